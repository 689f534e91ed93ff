/*-------------------------------------------------------------------------
 * src/algo/svm.c
 *		Linear support vector classification through liblinear, with
 *		scikit-learn's LinearSVC meanings.
 *
 * liblinear's dual coordinate descent solves, for each class against the
 * rest (one problem for two classes),
 *		min_w 1/2 ||w||^2 + C sum_i s_i loss(y_i w'[x_i, 1]),
 * loss "squared_hinge" (L2R_L2LOSS_SVC_DUAL) or "hinge" (L2R_L1LOSS_SVC_DUAL),
 * s_i the class weight of row i ("balanced": n / (k n_c) over the k classes
 * of the training rows).  The intercept is the weight of a constant feature
 * 1 (liblinear's bias), so it is regularised, as with LinearSVC's default
 * intercept_scaling = 1.  Debian's liblinear 2.3 fixes the iterations at
 * 1000, LinearSVC's default max_iter; a run that reaches them raises a
 * NOTICE.  The outputs are decision values, not probabilities
 * (scores_only): for two classes, the second label's value and its
 * negation.
 *
 * liblinear and its model: the problem is built in palloc'd memory from
 * the training blocks (zeros left out, as liblinear expects); the
 * solution's buffers are palloc'd before train() is called, so that the
 * weights are copied out and liblinear's malloc'd model is freed before
 * anything can raise.  liblinear prints through a callback that only
 * records the iteration count and the warning; it never exits, and draws
 * its coordinate order from rand(), which is seeded with the "seed"
 * hyperparameter for reproducible models and reseeded afterwards.  A
 * query cancel is honoured before and after train(), not during it.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <linear.h>

#include "common/pg_prng.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"

#define SVM_MAX_ITER 1000		/* fixed by liblinear 2.3's dual solvers */

typedef struct SvmState
{
	int			nvec;			/* decision functions: 1 for two classes */
	int		   *cls;			/* nvec: the class each one scores */
	int			negative;		/* nvec = 1: the class scored by negation */
	double	   *coef;			/* p x nvec, column-major */
	double	   *intercept;		/* nvec */
	int			iterations;		/* most iterations of any subproblem */
	bool		converged;
} SvmState;

static const HyperparamSpec svm_params[] = {
	{"C", HP_FLOAT, "1.0", 1e-300, 1e300, NULL, false},
	{"class_weight", HP_STRING, NULL, 0, 0, "balanced", true},
	{"loss", HP_STRING, "squared_hinge", 0, 0, "squared_hinge|hinge", false},
	{"tol", HP_FLOAT, "0.0001", 1e-300, 1e300, NULL, false},
};

/* What liblinear reported through its print function, during train(). */
static int	svm_lib_iterations;
static bool svm_lib_max_iter_reached;

/*
 * svm_lib_print receives liblinear's messages instead of stdout.  It runs
 * inside liblinear: it only records, never raises or allocates.
 */
static void
svm_lib_print(const char *s)
{
	const char *it = strstr(s, "#iter = ");

	if (it != NULL)
		svm_lib_iterations = Max(svm_lib_iterations, atoi(it + strlen("#iter = ")));
	if (strstr(s, "reaching max number of iterations") != NULL)
		svm_lib_max_iter_reached = true;
}

/*
 * Builds liblinear's problem from the training blocks: per row its nonzero
 * features, the bias feature (index p + 1, value 1) and the terminator.
 * Class indexes are liblinear's labels.
 */
static void
svm_build_problem(TrainSet *ts, struct problem *prob)
{
	int			p = ts->p;
	Size		limit = (Size) ml_max_train_memory * 1024;
	Size		bytes;
	TrainBlock	blk;

	prob->l = (int) ts->n;
	prob->n = p + 1;
	prob->bias = 1.0;
	prob->y = palloc(sizeof(double) * ts->n);
	prob->x = palloc(sizeof(struct feature_node *) * ts->n);
	bytes = ts->binding->ds->bytes + (sizeof(double) + sizeof(void *)) * ts->n;
	memcpy(prob->y, ts->y, sizeof(double) * ts->n);

	TrainSetBlockBegin(ts, &blk);
	while (TrainSetNextBlock(ts, &blk))
	{
		int64		nnz = 0;
		struct feature_node *node;
		Size		block_bytes;

		for (int j = 0; j < p; j++)
		{
			const double *x = blk.X + (Size) j * blk.ld;

			for (int i = 0; i < blk.count; i++)
				nnz += x[i] != 0.0;
		}
		block_bytes = sizeof(struct feature_node) * (nnz + 2 * (Size) blk.count);
		bytes += block_bytes;
		if (bytes > limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("training data exceeds ml.max_train_memory (%d kB)", ml_max_train_memory),
					 errdetail("The data and liblinear's copy of the first %lld training rows hold %zu kB.",
							   (long long) (blk.start + blk.count), bytes / 1024),
					 errhint("Raise ml.max_train_memory, or train on a sample, for example FROM t TABLESAMPLE SYSTEM (10).")));
		node = MemoryContextAllocHuge(CurrentMemoryContext, block_bytes);

		/* rows are laid out one after the other, each ending at index -1 */
		for (int i = 0; i < blk.count; i++)
		{
			prob->x[blk.start + i] = node;
			for (int j = 0; j < p; j++)
			{
				double		v = blk.X[(Size) j * blk.ld + i];

				if (v != 0.0)
				{
					node->index = j + 1;
					node->value = v;
					node++;
				}
			}
			node->index = p + 1;
			node->value = prob->bias;
			node++;
			node->index = -1;
			node->value = 0.0;
			node++;
		}
	}
	TrainSetBlockEnd(&blk);
}

static void
svm_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	int			p = ts->p;
	int			k = ts->nclasses;
	SvmState   *st = palloc0(sizeof(SvmState));
	int64	   *count = palloc0(sizeof(int64) * k);
	int		   *present = palloc(sizeof(int) * k);
	int		   *vec_of = palloc(sizeof(int) * k);
	int			npresent = 0;
	const char *class_weight = HpString(hp, "class_weight");
	struct problem prob;
	struct parameter param;
	struct model *lm;
	const char *bad;
	double	   *w;
	int		   *lab;
	int			nr_class;
	int			nr_feature;

	if (ts->n > INT_MAX || p >= INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("linear_svm takes at most %d training rows and features", INT_MAX - 1),
				 errhint("Train on a sample, for example FROM t TABLESAMPLE SYSTEM (10).")));

	for (int64 i = 0; i < ts->n; i++)
		count[(int) ts->y[i]]++;
	for (int c = 0; c < k; c++)
	{
		vec_of[c] = -1;
		if (count[c] > 0)
			present[npresent++] = c;
	}

	memset(&param, 0, sizeof(param));
	param.solver_type = strcmp(HpString(hp, "loss"), "hinge") == 0 ?
		L2R_L1LOSS_SVC_DUAL : L2R_L2LOSS_SVC_DUAL;
	param.eps = HpFloat(hp, "tol");
	param.C = HpFloat(hp, "C");
	param.p = 0.1;				/* used by regression solvers only */
	if (class_weight != NULL)
	{
		/* only labels that occur, or liblinear warns on stderr */
		param.nr_weight = npresent;
		param.weight_label = palloc(sizeof(int) * npresent);
		param.weight = palloc(sizeof(double) * npresent);
		for (int v = 0; v < npresent; v++)
		{
			int			c = present[v];

			param.weight_label[v] = c;
			param.weight[v] = (double) ts->n / ((double) npresent * (double) count[c]);
		}
	}

	svm_build_problem(ts, &prob);
	bad = check_parameter(&prob, &param);
	if (bad != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("liblinear rejected the parameters of linear_svm: %s", bad)));

	/* the solution's buffers, allocated before liblinear holds memory */
	st->nvec = npresent == 2 ? 1 : npresent;
	w = palloc(sizeof(double) * (Size) (p + 1) * st->nvec);
	lab = palloc(sizeof(int) * npresent);
	st->cls = palloc(sizeof(int) * st->nvec);
	st->coef = palloc(sizeof(double) * Max((Size) p * st->nvec, 1));
	st->intercept = palloc(sizeof(double) * st->nvec);

	CHECK_FOR_INTERRUPTS();
	svm_lib_iterations = 0;
	svm_lib_max_iter_reached = false;
	set_print_string_function(svm_lib_print);
	srand((unsigned int) hp->seed);
	lm = train(&prob, &param);
	srandom(pg_prng_uint32(&pg_global_prng_state));
	if (lm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("liblinear returned no model")));
	nr_class = lm->nr_class;
	nr_feature = lm->nr_feature;
	if (nr_class == npresent && nr_feature == p)
	{
		memcpy(w, lm->w, sizeof(double) * (Size) (p + 1) * st->nvec);
		memcpy(lab, lm->label, sizeof(int) * npresent);
	}
	free_and_destroy_model(&lm);
	if (nr_class != npresent || nr_feature != p)
		elog(ERROR, "liblinear returned %d classes and %d features, not %d and %d",
			 nr_class, nr_feature, npresent, p);

	/* map liblinear's labels (in order of first appearance) to classes */
	for (int v = 0; v < npresent; v++)
	{
		if (lab[v] < 0 || lab[v] >= k || count[lab[v]] == 0)
			elog(ERROR, "liblinear returned an unknown label %d", lab[v]);
		vec_of[lab[v]] = v;
	}
	if (npresent == 2)
	{
		/* liblinear scores its first label; ours is the second class */
		double		sign = lab[0] == present[1] ? 1.0 : -1.0;

		st->cls[0] = present[1];
		st->negative = present[0];
		for (int j = 0; j < p; j++)
			st->coef[j] = sign * w[j];
		st->intercept[0] = sign * w[p] * prob.bias;
	}
	else
	{
		/* w is (p + 1) x nr_class, row-major: w[j * nr_class + v] */
		st->negative = -1;
		for (int v = 0; v < npresent; v++)
		{
			int			c = present[v];
			int			src = vec_of[c];

			st->cls[v] = c;
			for (int j = 0; j < p; j++)
				st->coef[(Size) v * p + j] = w[(Size) j * npresent + src];
			st->intercept[v] = w[(Size) p * npresent + src] * prob.bias;
		}
	}
	st->iterations = svm_lib_iterations;
	st->converged = !svm_lib_max_iter_reached;
	if (!st->converged)
		ereport(NOTICE,
				(errmsg("linear_svm did not converge in %d iterations", SVM_MAX_ITER),
				 errhint("Raise tol, lower C, or scale the features.")));
	m->state = st;

	pfree(w);
	pfree(lab);
	pfree(count);
	pfree(present);
	pfree(vec_of);
}

static void
svm_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const SvmState *st = m->state;
	int			k = m->nclasses;

	for (int i = 0; i < n; i++)
	{
		double	   *o = out + (Size) i * k;

		/* a class without training rows scores lowest */
		for (int c = 0; c < k; c++)
			o[c] = -INFINITY;
		for (int v = 0; v < st->nvec; v++)
		{
			const double *w = st->coef + (Size) v * m->p;
			double		z = st->intercept[v];

			for (int j = 0; j < m->p; j++)
				z += X[(Size) j * ld + i] * w[j];
			o[st->cls[v]] = z;
			if (st->nvec == 1)
				o[st->negative] = -z;
		}
	}
}

static void
svm_serialize(const AlgoModel *m, StringInfo buf)
{
	const SvmState *st = m->state;

	pq_sendint32(buf, st->nvec);
	pq_sendint32(buf, st->negative);
	for (int v = 0; v < st->nvec; v++)
		pq_sendint32(buf, st->cls[v]);
	pq_sendint32(buf, st->iterations);
	pq_sendbyte(buf, st->converged);
	BlobPutFloat8Array(buf, st->coef, (int64) m->p * st->nvec);
	BlobPutFloat8Array(buf, st->intercept, st->nvec);
}

static void
svm_deserialize(AlgoModel *m, BlobReader *r)
{
	SvmState   *st = palloc0(sizeof(SvmState));

	st->nvec = BlobGetCount(r, m->nclasses, sizeof(int32), "decision functions");
	if (st->nvec < 1 || st->nvec == 2)
		BlobCorrupt(r, "The linear_svm model has a wrong number of decision functions.");
	st->negative = BlobGetInt32(r);
	if (st->nvec == 1 ? (st->negative < 0 || st->negative >= m->nclasses) : st->negative != -1)
		BlobCorrupt(r, "The linear_svm negative class is out of range.");
	st->cls = palloc(sizeof(int) * st->nvec);
	for (int v = 0; v < st->nvec; v++)
	{
		st->cls[v] = BlobGetInt32(r);
		if (st->cls[v] < 0 || st->cls[v] >= m->nclasses)
			BlobCorrupt(r, "A linear_svm class is out of range.");
	}
	st->iterations = BlobGetInt32(r);
	st->converged = BlobGetBool(r);
	st->coef = palloc(sizeof(double) * Max((Size) m->p * st->nvec, 1));
	BlobGetFloat8Array(r, st->coef, (int64) m->p * st->nvec);
	st->intercept = palloc(sizeof(double) * st->nvec);
	BlobGetFloat8Array(r, st->intercept, st->nvec);
	m->state = st;
}

static void
svm_describe(const AlgoModel *m, char **feature_names, char **labels,
			 JsonbParseState **js)
{
	const SvmState *st = m->state;

	JbKey(js, "iterations");
	JbInt(js, st->iterations);
	JbKey(js, "converged");
	JbBool(js, st->converged);
	if (st->nvec == 1)
	{
		JbKey(js, "positive_class");
		JbString(js, labels[st->cls[0]]);
	}
	JbKey(js, "intercept");
	JbBeginObject(js);
	for (int v = 0; v < st->nvec; v++)
	{
		JbKey(js, labels[st->cls[v]]);
		JbFloat(js, st->intercept[v]);
	}
	JbEndObject(js);
	JbKey(js, "coefficients");
	JbBeginObject(js);
	for (int v = 0; v < st->nvec; v++)
	{
		JbKey(js, labels[st->cls[v]]);
		JbBeginObject(js);
		for (int j = 0; j < m->p; j++)
		{
			JbKey(js, feature_names[j]);
			JbFloat(js, st->coef[(Size) v * m->p + j]);
		}
		JbEndObject(js);
	}
	JbEndObject(js);
}

const AlgoSpec linear_svm_algo = {
	.name = "linear_svm",
	.tasks = ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_STANDARD,
	.scores_only = true,
	.params = svm_params,
	.nparams = lengthof(svm_params),
	.fit = svm_fit,
	.predict = svm_predict,
	.serialize = svm_serialize,
	.deserialize = svm_deserialize,
	.describe = svm_describe,
};
