/*-------------------------------------------------------------------------
 * src/algo/ensemble.c
 *		A weighted average of models fitted on the same transformed
 *		features: the autopilot's ensemble.
 *
 * The members are ordinary fitted algorithms (regression values, or class
 * probabilities: never a scores-only classifier, whose outputs are on
 * another scale).  They share the ensemble's pipeline, standardised and
 * imputed, which every candidate accepts: the linear family is fit on
 * standardised features anyway, and trees split the same way on any
 * monotone rescaling.  The autopilot chooses the members and weights
 * (search.c); ml.train cannot be asked for an ensemble directly.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"

#define ENSEMBLE_MAX_MEMBERS 64

typedef struct EnsembleState
{
	int			n;
	AlgoModel  *members;
	double	   *weights;
} EnsembleState;

static void
ensemble_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	const EnsemblePlan *plan = hp->ensemble;
	EnsembleState *st = palloc0(sizeof(EnsembleState));
	TrainLog   *log = ts->log;

	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ensembles are built by the autopilot"),
				 errhint("Use ml.autopilot, or algorithm => 'auto'.")));
	st->n = plan->n;
	st->members = palloc0(sizeof(AlgoModel) * plan->n);
	st->weights = palloc(sizeof(double) * plan->n);
	ts->log = NULL;				/* the members' iterations are not the ensemble's */
	for (int i = 0; i < plan->n; i++)
	{
		AlgoModel  *a = &st->members[i];

		CHECK_FOR_INTERRUPTS();
		a->spec = plan->specs[i];
		a->task = m->task;
		a->p = m->p;
		a->nclasses = m->nclasses;
		a->spec->fit(a, ts, plan->hps[i]);
		st->weights[i] = plan->weights[i];
	}
	ts->log = log;
	m->state = st;
}

static void
ensemble_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const EnsembleState *st = m->state;
	int			nout = AlgoOutputs(m);
	double	   *buf = palloc(sizeof(double) * Max(n, 1) * nout);

	memset(out, 0, sizeof(double) * n * nout);
	for (int i = 0; i < st->n; i++)
	{
		const AlgoModel *a = &st->members[i];

		a->spec->predict(a, X, n, ld, buf);
		for (int64 j = 0; j < (int64) n * nout; j++)
			out[j] += st->weights[i] * buf[j];
	}
	pfree(buf);
}

static void
ensemble_serialize(const AlgoModel *m, StringInfo buf)
{
	const EnsembleState *st = m->state;

	pq_sendint32(buf, st->n);
	for (int i = 0; i < st->n; i++)
	{
		BlobPutString(buf, st->members[i].spec->name);
		pq_sendfloat8(buf, st->weights[i]);
		pq_sendint32(buf, st->members[i].noutputs);
		st->members[i].spec->serialize(&st->members[i], buf);
	}
}

static void
ensemble_deserialize(AlgoModel *m, BlobReader *r)
{
	EnsembleState *st = palloc0(sizeof(EnsembleState));
	double		total = 0.0;

	st->n = BlobGetCount(r, ENSEMBLE_MAX_MEMBERS, 16, "ensemble members");
	if (st->n < 1)
		BlobCorrupt(r, "The ensemble has no members.");
	st->members = palloc0(sizeof(AlgoModel) * st->n);
	st->weights = palloc(sizeof(double) * st->n);
	for (int i = 0; i < st->n; i++)
	{
		AlgoModel  *a = &st->members[i];
		char	   *name = BlobGetString(r);
		const AlgoSpec *spec = AlgoFind(name);

		if (spec == NULL || spec->internal || spec->scores_only ||
			!(spec->tasks & ML_TASK_BIT(m->task)))
			BlobCorrupt(r, psprintf("The ensemble names a member \"%s\" it cannot hold.", name));
		st->weights[i] = BlobGetFloat8(r);
		if (!(st->weights[i] > 0.0 && st->weights[i] <= 1.0))
			BlobCorrupt(r, "An ensemble weight is out of range.");
		total += st->weights[i];
		a->spec = spec;
		a->task = m->task;
		a->p = m->p;
		a->nclasses = m->nclasses;
		a->noutputs = BlobGetInt32(r);
		if (a->noutputs != 0)
			BlobCorrupt(r, "An ensemble member has outputs of its own.");
		spec->deserialize(a, r);
	}
	if (fabs(total - 1.0) > 1e-9)
		BlobCorrupt(r, "The ensemble weights do not sum to 1.");
	m->state = st;
}

static void
ensemble_describe(const AlgoModel *m, char **feature_names, char **labels,
				  JsonbParseState **js)
{
	const EnsembleState *st = m->state;

	JbKey(js, "members");
	JbBeginArray(js);
	for (int i = 0; i < st->n; i++)
	{
		const AlgoModel *a = &st->members[i];

		JbBeginObject(js);
		JbKey(js, "algorithm");
		JbString(js, a->spec->name);
		JbKey(js, "weight");
		JbFloat(js, st->weights[i]);
		JbKey(js, "model");
		JbBeginObject(js);
		a->spec->describe(a, feature_names, labels, js);
		JbEndObject(js);
		JbEndObject(js);
	}
	JbEndArray(js);
}

const AlgoSpec ensemble_algo = {
	.name = "ensemble",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION) | ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_STANDARD,
	.internal = true,
	.fit = ensemble_fit,
	.predict = ensemble_predict,
	.serialize = ensemble_serialize,
	.deserialize = ensemble_deserialize,
	.describe = ensemble_describe,
};
