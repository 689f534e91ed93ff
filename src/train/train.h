/*-------------------------------------------------------------------------
 * src/train/train.h
 *		ml.train: read, split, fit the pipeline and the algorithm, measure,
 *		store, and deploy when the model earns it.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_TRAIN_H
#define PGMAKER_TRAIN_H

#include "pgmaker.h"

#include "data/data.h"
#include "eval/eval.h"
#include "model/model.h"
#include "nodes/pg_list.h"
#include "prep/prep.h"
#include "utils/timestamp.h"

extern double *ModelScoreRows(const Model *m, const DataSet *ds, const int64 *rows,
							  int64 n, int nclasses_y, char **labels_y);
extern void ModelEvaluateRows(const Model *m, const DataSet *ds, const int64 *rows,
							  int64 n, const double *y, int nclasses_y,
							  char **labels_y, int64 seed, bool detailed,
							  Metrics *out);
extern double ModelThresholdOn(const Model *m, int nclasses_y, char **labels_y);

/* The encoded target. */
typedef struct Target
{
	double	   *y;				/* value, or class index */
	int			nclasses;
	char	  **labels;
	double	   *label_values;
	bool		labels_numeric;
} Target;

/* The training rows a fit, a cross-validation or a search works on. */
typedef struct FitInput
{
	const DataSet *ds;
	const Target *t;
	MLTask		task;
	const PipelineOptions *opts;
	const int64 *rows;
	int64		n;
	int64		seed;			/* the folds' */
} FitInput;

/*
 * A source read by ml.train's aggregate path (stream.c): the co-moments of
 * every training row, and a sample of the training and of the hold-out
 * rows as a small DataSet (training rows first).
 */
#define TRAIN_STREAM_SAMPLE_ROWS 25000

struct LinFitState;

typedef struct StreamData
{
	DataSet    *ds;
	int64	   *train_rows;
	int64		ntrain_sample;
	int64	   *test_rows;
	int64		ntest_sample;
	int64		ntrain;			/* every training row */
	int64		ntest;			/* every hold-out row */
	struct LinFitState *moments;	/* of the training rows */
	char	   *query;			/* the aggregate query that read the source */
	char	   *step_query;		/* logistic: a Newton step's scan, or NULL */
	double		test_size;
} StreamData;

extern bool TrainStreamRead(const char *source, const char *target,
							const PipelineOptions *opts, const AlgoSpec *spec,
							const Hyperparams *hp, double test_size, StreamData *out);
extern void TrainStreamFit(const StreamData *sd, const Target *t,
						   const PipelineOptions *opts, const AlgoSpec *spec,
						   const Hyperparams *hp, AlgoModel *fitted, Model *model);

/* k-fold cross-validation of one algorithm and its hyperparameters. */
typedef struct CvResult
{
	int			k;
	const char *metric;
	double	   *scores;			/* the metric per fold */
	Jsonb	  **fold_metrics;	/* every metric per fold */
	double		mean;			/* NaN when a fold's metric is undefined */
	double		std;
	double	   *oof;			/* the out-of-fold outputs, CvOutputs per
								 * training row, when asked for; else NULL */
} CvResult;

extern void TrainCheckFolds(const FitInput *in, int k);
extern bool TrainCrossValidate(const FitInput *in, const AlgoSpec *spec,
							   const Hyperparams *hp, int k, const char *metric,
							   TimestampTz deadline, bool want_oof, CvResult *cv);
extern Jsonb *CvResultToJsonb(const CvResult *cv);
extern int	CvOutputs(const FitInput *in);
extern void TrainFoldScores(const FitInput *in, int k, const char *metric, double *oof,
							CvResult *cv);

/*
 * Hyperparameter search and autopilot (search.c).  A search runs trials,
 * each a cross-validation of one algorithm with one set of
 * hyperparameters; the autopilot searches several algorithms at once.
 */
typedef struct Trial
{
	int			number;			/* 1-based, in the order run */
	const AlgoSpec *spec;
	Hyperparams *hp;
	CvResult	cv;
	double		seconds;
} Trial;

typedef struct SearchCandidate
{
	const AlgoSpec *spec;
	Trial	   *best;			/* NULL when none of its trials finished */
	int			ntrials;
} SearchCandidate;

typedef struct SearchOutcome
{
	const char *kind;			/* search or autopilot */
	const char *strategy;		/* grid, random or auto */
	const char *metric;
	int			folds;
	double		max_seconds;	/* 0: no budget */
	int			planned;
	bool		stopped_by_time;
	int			failed;			/* trials that raised an error */
	List	   *trials;			/* of Trial *, every finished one */
	int			ncandidates;
	SearchCandidate *candidates;
	SearchCandidate *chosen;	/* the candidate of the best trial */
	Jsonb	   *data_profile;	/* autopilot: what it saw of the data */
} SearchOutcome;

/* search_args; zeroes and NULLs mean the defaults */
typedef struct SearchArgs
{
	int			n_iter;			/* random draws (per candidate, autopilot) */
	int			cv;				/* folds */
	double		max_seconds;	/* time budget of the trials; 0: none */
	const char *metric;			/* NULL: the task's key metric */
	List	   *algorithms;		/* autopilot: of const AlgoSpec * */
} SearchArgs;

extern const AlgoSpec autopilot_spec;
extern void SearchParseArgs(Jsonb *args, bool autopilot, SearchArgs *out);
extern void SearchRun(const FitInput *in, const AlgoSpec *spec, Jsonb *hp_json,
					  const char *strategy, Jsonb *params, const SearchArgs *args,
					  SearchOutcome *out);
extern void AutopilotRun(const FitInput *in, Jsonb *hp_json, const SearchArgs *args,
						 SearchOutcome *out);
extern bool TrialBetter(const char *metric, const Trial *a, const Trial *b);

#endif							/* PGMAKER_TRAIN_H */
