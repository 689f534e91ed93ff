/*-------------------------------------------------------------------------
 * src/algo/algo.h
 *		The algorithm registry: what every algorithm provides (fit,
 *		predict, serialise, describe) and what it is given (a TrainSet of
 *		transformed features, validated hyperparameters).
 *
 * An algorithm sees only transformed features: the pipeline has already
 * imputed, scaled and encoded them.  It reads the training matrix in
 * blocks (TrainSetNextBlock), so that an algorithm that needs one pass
 * never holds a second copy of the data; iterative algorithms may
 * materialise it once with TrainSetMaterialize.
 *
 * predict writes, for each of n rows, AlgoOutputs() numbers: the value for
 * regression, the class probabilities for classification, the distances
 * to each cluster's centre for clustering, the projection on each
 * component for decomposition.  Unsupervised algorithms get no y.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_ALGO_H
#define PGMAKER_ALGO_H

#include "pgmaker.h"

#include "lib/stringinfo.h"
#include "prep/prep.h"
#include "utils/array.h"
#include "utils/jsonb.h"

struct BlobReader;
struct AlgoSpec;

typedef enum HyperparamType
{
	HP_INT,
	HP_FLOAT,
	HP_BOOL,
	HP_STRING
} HyperparamType;

typedef struct HyperparamSpec
{
	const char *name;
	HyperparamType type;
	const char *default_value;	/* text form; NULL means null */
	double		min;			/* numeric bounds, inclusive */
	double		max;
	const char *choices;		/* HP_STRING: allowed values, "|"-separated */
	bool		nullable;
} HyperparamSpec;

typedef struct HyperparamValue
{
	bool		isnull;
	double		num;
	bool		boolean;
	char	   *str;
} HyperparamValue;

struct EnsemblePlan;

typedef struct Hyperparams
{
	const struct AlgoSpec *spec;
	HyperparamValue *values;	/* one per spec->params entry */
	int64		seed;			/* common to every algorithm */
	int			cv;				/* folds of cross-validation; 0: none */
	/* binary classification's decision threshold: fixed, tuned, or neither */
	double		threshold;		/* fixed; NaN when not given */
	const char *threshold_metric;	/* "f1" or "accuracy" to tune; or NULL */
	const struct EnsemblePlan *ensemble;	/* ensemble_algo's members */
	Jsonb	   *rules;			/* debugger rules (checked), or NULL */
} Hyperparams;

/*
 * What ensemble_algo fits: members, each an algorithm with its
 * hyperparameters, and their weights (summing to 1).  The autopilot
 * builds it; it is not a user-facing algorithm.
 */
typedef struct EnsemblePlan
{
	int			n;
	const struct AlgoSpec **specs;
	Hyperparams **hps;
	double	   *weights;
} EnsemblePlan;

extern Hyperparams *HyperparamsParse(const struct AlgoSpec *spec, Jsonb *json);
extern Jsonb *HyperparamsToJsonb(const Hyperparams *hp);
extern double HpFloat(const Hyperparams *hp, const char *name);
extern int	HpInt(const Hyperparams *hp, const char *name);
extern bool HpBool(const Hyperparams *hp, const char *name);
extern const char *HpString(const Hyperparams *hp, const char *name);
extern bool HpIsNull(const Hyperparams *hp, const char *name);

/*
 * Training telemetry: one entry per iteration of an iterative algorithm
 * (NaN where a figure does not apply), stored in ml.training_log.
 */
typedef struct TrainLogEntry
{
	int			iteration;		/* 1-based */
	double		train_loss;
	double		validation_loss;
	double		norm;			/* gradient norm, or the change of the step */
	double		elapsed;		/* seconds since the fit started */
} TrainLogEntry;

struct TrainSet;

/* Debugger rules (debugger.c), evaluated on a training run. */
typedef enum DebugRuleKind
{
	DBG_LOSS_NOT_DECREASING,
	DBG_OVERFIT,
	DBG_OVERTRAINING,
	DBG_VANISHING_GRADIENT,
	DBG_EXPLODING_TENSOR,
	DBG_NAN_OR_INF,
	DBG_STALLED_TRAINING,
	DBG_CLASS_IMBALANCE,
	DBG_FEATURE_IMPORTANCE_OVERWEIGHT,
	DBG_NRULES
} DebugRuleKind;

typedef enum DebugAction
{
	DBG_RECORD,
	DBG_ALERT,
	DBG_STOP
} DebugAction;

enum
{
	DBG_OK,
	DBG_FIRED,
	DBG_SKIPPED
};

typedef struct DebugRule
{
	bool		enabled;
	DebugAction action;
	double		threshold;		/* the rule's numeric setting */
	int			window;			/* its window or patience */
	int			status;			/* DBG_OK, DBG_FIRED or DBG_SKIPPED */
	int			iteration;		/* where it fired (0: before or after) */
	char	   *detail;
	int			count;			/* consecutive iterations so far */
} DebugRule;

typedef struct DebugRules
{
	DebugRule	r[DBG_NRULES];
	bool		stop;			/* a rule with action stop fired */
	int			stopped_at;
	double		best_validation;
	int			best_iteration;
} DebugRules;

typedef struct TrainLog
{
	const char *norm_name;		/* "gradient_norm" or "change" */
	int			n;
	int			cap;
	TrainLogEntry *entries;
	int64		start;			/* TimestampTz of the fit's start */
	DebugRules *debug;			/* rules to evaluate, or NULL */
} TrainLog;

extern DebugRules *DebugRulesParse(Jsonb *rules);
extern bool DebugObserve(TrainLog *log);
extern void DebugFinish(DebugRules *d, const TrainLog *log);
extern void DebugCheckData(DebugRules *d, const struct TrainSet *ts);
extern void DebugCheckImportance(DebugRules *d, int p, const double *importance,
								 char **feature_names);
extern Jsonb *DebugReport(const DebugRules *d);
extern bool DebugAlertDue(const DebugRules *d);

/* The training rows, as transformed features. */
typedef struct TrainSet
{
	MLTask		task;
	int64		n;
	int			p;
	int			nclasses;		/* classification */
	const double *y;			/* value, or class index 0..nclasses-1 */
	char	  **feature_names;
	const PipelineBinding *binding;
	const int64 *rows;			/* DataSet rows of the training set */
	double	   *X;				/* materialised n x p matrix, or NULL */
	TrainLog   *log;			/* telemetry, or NULL */
} TrainSet;

/* TrainLogAdd returns false when a debugger rule stops the training. */
extern bool TrainLogAdd(TrainSet *ts, const char *norm_name, int iteration,
						double train_loss, double validation_loss, double norm);

#define TRAIN_BLOCK_ROWS 4096

typedef struct TrainBlock
{
	int64		start;			/* first training row of the block */
	int			count;
	const double *X;			/* count rows, column-major */
	int			ld;				/* leading dimension of X */
	double	   *buf;
} TrainBlock;

extern void TrainSetBlockBegin(const TrainSet *ts, TrainBlock *blk);
extern bool TrainSetNextBlock(const TrainSet *ts, TrainBlock *blk);
extern void TrainSetBlockEnd(TrainBlock *blk);
extern bool TrainSetMaterialize(TrainSet *ts);

/* X'X, X'y and y'y of the training rows, centred or raw (registry.c). */
typedef struct CrossProducts
{
	int			p;
	double	   *XtX;			/* p x p, upper triangle, column-major */
	double	   *Xty;			/* p, or NULL without y */
	double		yty;
	double	   *xmean;			/* p; zeros when not centred */
	double		ymean;
} CrossProducts;

extern void TrainSetCrossProducts(TrainSet *ts, bool centre, bool with_y,
								  CrossProducts *cp);

/* A fitted algorithm. */
typedef struct AlgoModel
{
	const struct AlgoSpec *spec;
	MLTask		task;
	int			p;
	int			nclasses;
	int			noutputs;		/* clustering: clusters; decomposition:
								 * components (set by fit) */
	void	   *state;
} AlgoModel;

typedef struct AlgoSpec
{
	const char *name;
	uint32		tasks;			/* ML_TASK_BIT() of the tasks it does */
	ScaleKind	default_scale;
	bool		keeps_missing;	/* takes NaN features: no default imputation */
	bool		scores_only;	/* classification outputs are scores, not
								 * probabilities: no predict_proba, no log_loss */
	bool		internal;		/* built by pgmaker itself, never named by a
								 * user (ensemble) */
	const HyperparamSpec *params;
	int			nparams;
	void		(*fit) (AlgoModel *m, TrainSet *ts, const Hyperparams *hp);
	void		(*predict) (const AlgoModel *m, const double *X, int n, int ld,
							double *out);
	void		(*serialize) (const AlgoModel *m, StringInfo buf);
	void		(*deserialize) (AlgoModel *m, struct BlobReader *r);
	void		(*describe) (const AlgoModel *m, char **feature_names,
							 char **labels, JsonbParseState **st);

	/*
	 * explain (optional) splits the raw output (margin) of one row x[p] for
	 * class cls (regression: 0) into per-feature contributions contrib[p]
	 * and returns the bias; the bias and contributions sum to the margin.
	 */
	double		(*explain) (const AlgoModel *m, const double *x, int cls,
							double *contrib);

	/*
	 * centres (optional, clustering) returns the cluster centres in
	 * transformed units: noutputs x p, row-major.
	 */
	const double *(*centres) (const AlgoModel *m);
} AlgoSpec;

/* The most features a least-squares system may have (linear.c, aggregates.c). */
#define LINEAR_MAX_FEATURES 5000

/*
 * Co-moments of a least-squares fit (aggregates.c): the row count, the
 * means of y and of each x, and the sums of centred cross products; a
 * varlena, so that it can be an aggregate's bytea state.
 */
typedef struct LinFitState
{
	int32		vl_len_;		/* varlena header */
	int32		p;
	int64		n;
	double		alpha;			/* ridge penalty; 0 for linear_fit */
	double		mean_y;
	double		cyy;
	/* then: mean_x[p], cxy[p], cxx[p * (p + 1) / 2] (upper, packed by column) */
	double		data[FLEXIBLE_ARRAY_MEMBER];
} LinFitState;

#define LF_MEAN_X(s)	((s)->data)
#define LF_CXY(s)		((s)->data + (s)->p)
#define LF_CXX(s)		((s)->data + 2 * (s)->p)
#define LF_PACKED(p)	((Size) (p) * ((p) + 1) / 2)
#define LF_SIZE(p)		(offsetof(LinFitState, data) + sizeof(double) * (2 * (Size) (p) + LF_PACKED(p)))

extern LinFitState *LinFitNew(int p, double alpha);
extern void LinFitMerge(LinFitState *a, const LinFitState *b);
extern void LinearFitMoments(AlgoModel *m, const Hyperparams *hp, const LinFitState *s,
							 const double *center, const double *inv_scale);

/*
 * The state of a Newton step of logistic regression (logistic_step.c): at
 * the point theta, the rows' weighted log-loss, its gradient and its
 * Hessian; a varlena, so that it can be an aggregate's bytea state.
 */
typedef struct LogStepState
{
	int32		vl_len_;		/* varlena header */
	int32		magic;
	int32		p;
	int32		nblock;			/* rows in the block, not yet in H */
	bool		standardize;	/* features standardised with center, scale */
	int64		n;				/* rows */
	double		l2;				/* penalty on w */
	double		wsum;			/* S: the rows' weights */
	double		loss;			/* their weighted log-loss */

	/*
	 * then: theta[p + 1] (w, then b), center[p], inv_scale[p], g[p + 1],
	 * H[(p + 1)^2] (upper triangle, column-major), and a block of
	 * LS_BLOCK_ROWS rows x (p + 1) (column-major)
	 */
	double		data[FLEXIBLE_ARRAY_MEMBER];
} LogStepState;

#define LS_MAGIC		0x4d4c4c31	/* "MLL1" */
#define LS_BLOCK_ROWS	128
#define LS_THETA(s)		((s)->data)
#define LS_CENTER(s)	((s)->data + (s)->p + 1)
#define LS_SCALE(s)		(LS_CENTER(s) + (s)->p)
#define LS_GRAD(s)		(LS_SCALE(s) + (s)->p)
#define LS_HESS(s)		(LS_GRAD(s) + (s)->p + 1)
#define LS_BLOCK(s)		(LS_HESS(s) + (Size) ((s)->p + 1) * ((s)->p + 1))
#define LS_SIZE(p)		(offsetof(LogStepState, data) + sizeof(double) * \
						 (4 * (Size) (p) + 2 + (Size) ((p) + 1) * ((p) + 1) + \
						  (Size) LS_BLOCK_ROWS * ((p) + 1)))

/* Argument checks of the fit aggregates (aggregates.c). */
extern const double *AggFeatureArray(ArrayType *xa, const char *name, int *p);
extern void AggCheckFinite(const double *x, int p, const char *name);

extern LogStepState *LogStepNew(int p, double l2, const double *theta,
								const double *center, const double *inv_scale);
extern LogStepState *LogStepFromBytea(bytea *b);
extern void LogStepAdd(LogStepState *s, double y, double sw, const double *x);
extern void LogStepMerge(LogStepState *a, const LogStepState *b);
extern void LogStepSolve(const LogStepState *s, double *next, double *objective,
						 double *gmax);
extern void LogisticSetBinary(AlgoModel *m, const double *coef, double intercept,
							  int iterations, bool converged);

extern int	AlgoSolveSymmetric(double *A, const double *b, double alpha, int p, int64 n,
							   double *w);
extern void AlgoLinearPredict(double intercept, const double *coef, int p,
							  const double *X, int n, int ld, double *out);
extern const AlgoSpec *AlgoFind(const char *name);
extern const AlgoSpec *AlgoLookup(const char *name);
extern const AlgoSpec *AlgoDefault(MLTask task);
extern char *AlgoNamesForTask(MLTask task);
extern int	AlgoOutputs(const AlgoModel *m);

/* Algorithms (one file per family). */
extern const AlgoSpec ensemble_algo;
extern const AlgoSpec linear_algo;
extern const AlgoSpec ridge_algo;
extern const AlgoSpec lasso_algo;
extern const AlgoSpec elastic_net_algo;
extern const AlgoSpec logistic_algo;
extern const AlgoSpec naive_bayes_algo;
extern const AlgoSpec linear_svm_algo;
extern const AlgoSpec xgboost_algo;
extern const AlgoSpec random_forest_algo;
extern const AlgoSpec kmeans_algo;
extern const AlgoSpec pca_algo;
extern const AlgoSpec endpoint_algo;

/* XGBoost's own model formats (xgboost.c), for export and import. */
extern bool XgbModelSave(const AlgoModel *m, const char *format, StringInfo out);
extern int	XgbModelLoad(AlgoModel *m, const char *bytes, Size len);

/* Limited-memory BFGS (lbfgs.c). */
typedef double (*LbfgsEval) (void *arg, const double *x, double *grad);

typedef struct LbfgsResult
{
	int			iterations;
	double		f;
	double		gnorm;			/* max |gradient| at the end */
	bool		converged;
	bool		search_failed;	/* stopped: no decrease along the direction */
	bool		stopped;		/* the progress callback asked to stop */
} LbfgsResult;

/* Called after each iteration; false stops the minimization there. */
typedef bool (*LbfgsProgress) (void *arg, int iteration, double f, double gnorm);

extern LbfgsResult LbfgsMinimize(int n, double *x, LbfgsEval eval, void *arg,
								 int max_iter, double gtol, LbfgsProgress progress);

#endif							/* PGMAKER_ALGO_H */
