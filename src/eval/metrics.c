/*-------------------------------------------------------------------------
 * src/eval/metrics.c
 *		Regression and classification metrics, with scikit-learn's
 *		definitions: r2, rmse, mae; accuracy, precision, recall, f1 (binary:
 *		of the positive class, the second label; multiclass: macro
 *		averages, 0 where undefined), roc_auc (binary), log_loss (with
 *		probabilities clipped to [1e-15, 1 - 1e-15]) and the confusion
 *		matrix.
 *-------------------------------------------------------------------------
 */
#include "eval/eval.h"

#include <math.h>

#include "miscadmin.h"

typedef struct MetricDef
{
	const char *name;
	MLTask		task;
	bool		higher_is_better;
	size_t		offset;
} MetricDef;

static const MetricDef metric_defs[] = {
	{"r2", ML_TASK_REGRESSION, true, offsetof(Metrics, r2)},
	{"rmse", ML_TASK_REGRESSION, false, offsetof(Metrics, rmse)},
	{"mae", ML_TASK_REGRESSION, false, offsetof(Metrics, mae)},
	{"accuracy", ML_TASK_CLASSIFICATION, true, offsetof(Metrics, accuracy)},
	{"precision", ML_TASK_CLASSIFICATION, true, offsetof(Metrics, precision)},
	{"recall", ML_TASK_CLASSIFICATION, true, offsetof(Metrics, recall)},
	{"f1", ML_TASK_CLASSIFICATION, true, offsetof(Metrics, f1)},
	{"roc_auc", ML_TASK_CLASSIFICATION, true, offsetof(Metrics, roc_auc)},
	{"log_loss", ML_TASK_CLASSIFICATION, false, offsetof(Metrics, log_loss)},
	{"silhouette", ML_TASK_CLUSTERING, true, offsetof(Metrics, silhouette)},
	{"inertia", ML_TASK_CLUSTERING, false, offsetof(Metrics, inertia)},
	{"explained_variance", ML_TASK_DECOMPOSITION, true, offsetof(Metrics, explained_variance)},
};

static const MetricDef *
metric_def(const char *name, MLTask task)
{
	for (int i = 0; i < lengthof(metric_defs); i++)
		if (metric_defs[i].task == task && strcmp(metric_defs[i].name, name) == 0)
			return &metric_defs[i];
	return NULL;
}

/*
 * MetricKeyName names the metric that ranks a task's models.
 */
const char *
MetricKeyName(MLTask task)
{
	switch (task)
	{
		case ML_TASK_REGRESSION:
			return "r2";
		case ML_TASK_CLASSIFICATION:
			return "f1";
		case ML_TASK_CLUSTERING:
			return "silhouette";
		case ML_TASK_DECOMPOSITION:
			return "explained_variance";
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * MetricHigherIsBetter says which way a metric improves.
 */
bool
MetricHigherIsBetter(const char *name)
{
	for (int i = 0; i < lengthof(metric_defs); i++)
		if (strcmp(metric_defs[i].name, name) == 0)
			return metric_defs[i].higher_is_better;
	return true;
}

/*
 * MetricsGet reads a metric by name; false when the task has no such
 * metric or it is undefined (NaN).
 */
bool
MetricsGet(const Metrics *m, const char *name, double *value)
{
	const MetricDef *def = metric_def(name, m->task);

	if (def == NULL)
		return false;
	*value = *(const double *) ((const char *) m + def->offset);
	return !isnan(*value);
}

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : (x > y);
}

typedef struct ScoredRow
{
	double		score;
	bool		positive;
} ScoredRow;

static int
scored_row_cmp(const void *a, const void *b)
{
	double		x = ((const ScoredRow *) a)->score;
	double		y = ((const ScoredRow *) b)->score;

	return x < y ? -1 : (x > y);
}

/* Area under the ROC curve by the rank-sum formula; ties share ranks. */
static double
binary_roc_auc(const double *y, const double *outputs, int64 n)
{
	ScoredRow  *rows = palloc_extended(sizeof(ScoredRow) * Max(n, 1), MCXT_ALLOC_HUGE);
	int64		npos = 0;
	double		rank_sum = 0.0;
	double		result;

	for (int64 i = 0; i < n; i++)
	{
		rows[i].score = outputs[i * 2 + 1];
		rows[i].positive = y[i] == 1.0;
		npos += rows[i].positive;
	}
	if (npos == 0 || npos == n)
	{
		pfree(rows);
		return NAN;
	}
	qsort(rows, n, sizeof(ScoredRow), scored_row_cmp);
	for (int64 i = 0; i < n;)
	{
		int64		j = i;
		int64		pos_in_tie = 0;

		while (j < n && rows[j].score == rows[i].score)
			pos_in_tie += rows[j++].positive;
		/* ranks i+1..j share their average */
		rank_sum += (double) pos_in_tie * ((double) (i + 1 + j) / 2.0);
		i = j;
	}
	result = (rank_sum - (double) npos * (npos + 1) / 2.0) /
		((double) npos * (double) (n - npos));
	pfree(rows);
	return result;
}

static double
safe_ratio(double num, double den)
{
	return den > 0 ? num / den : 0.0;
}

/*
 * MetricsDecide is the class a row's outputs (nclasses probabilities or
 * scores) predict: the highest (ties to the lower index), or for two
 * classes with a decision threshold (not NaN), class 1 when its output is
 * at least the threshold.
 */
int
MetricsDecide(const double *outputs, int nclasses, double threshold)
{
	int			best = 0;

	if (nclasses == 2 && !isnan(threshold))
		return outputs[1] >= threshold ? 1 : 0;
	for (int c = 1; c < nclasses; c++)
		if (outputs[c] > outputs[best])
			best = c;
	return best;
}

/*
 * MetricsTuneThreshold picks the decision threshold of a binary classifier
 * that maximises metric ("f1" or "accuracy") on n rows whose classes are y
 * (0 or 1) and whose outputs are as MetricsCompute takes them for two
 * classes (the threshold applies to class 1's probability or score).  Every cut
 * between two distinct scores is tried; the threshold is the midpoint of
 * the cut, so that it does not sit on a training row's score.  Ties go to
 * the threshold nearest neutral (0.5 for probabilities, 0 for scores).
 * *best_score receives the metric at the chosen threshold.
 */
double
MetricsTuneThreshold(const double *y, const double *outputs, int64 n, const char *metric,
					 double neutral, double *best_score)
{
	ScoredRow  *rows = palloc_extended(sizeof(ScoredRow) * Max(n, 1), MCXT_ALLOC_HUGE);
	bool		f1 = strcmp(metric, "f1") == 0;
	int64		npos = 0;
	int64		tp = 0;
	int64		fp = 0;
	double		best = -1.0;
	double		best_threshold = NAN;

	Assert(f1 || strcmp(metric, "accuracy") == 0);
	Assert(n > 0);
	for (int64 i = 0; i < n; i++)
	{
		rows[i].score = outputs[i * 2 + 1];
		rows[i].positive = y[i] == 1.0;
		npos += rows[i].positive;
	}
	qsort(rows, n, sizeof(ScoredRow), scored_row_cmp);

	/*
	 * Walk the scores from the highest down; after the rows from i up are
	 * predicted positive, a threshold between rows[i - 1] and rows[i]
	 * realises the cut.  i == n is "nothing positive".
	 */
	for (int64 i = n; i >= 0; i--)
	{
		double		threshold;
		double		value;

		if (i < n)
		{
			tp += rows[i].positive;
			fp += !rows[i].positive;
			if (i > 0 && rows[i - 1].score == rows[i].score)
				continue;		/* not a cut: the tie goes together */
		}
		if (i == n)
			threshold = nextafter(rows[n - 1].score, INFINITY);
		else if (i == 0)
			threshold = rows[0].score;
		else
			threshold = rows[i - 1].score + (rows[i].score - rows[i - 1].score) / 2.0;
		if (f1)
			value = safe_ratio(2.0 * tp, (double) (tp + npos + fp));
		else
			value = (double) (tp + (n - npos) - fp) / (double) n;
		if (value > best ||
			(value == best && fabs(threshold - neutral) < fabs(best_threshold - neutral)))
		{
			best = value;
			best_threshold = threshold;
		}
	}
	pfree(rows);
	*best_score = best;
	return best_threshold;
}

/*
 * MetricsCompute fills m from true values y and model outputs (one value
 * per row for regression, nclasses probabilities per row otherwise; or
 * class scores when probabilities is false, which leaves log_loss
 * undefined and ranks roc_auc by the positive class's score).  Rows are
 * classified as MetricsDecide does with threshold (NaN: the most probable
 * class).
 */
void
MetricsCompute(Metrics *m, MLTask task, const double *y, const double *outputs,
			   int64 n, int nclasses, bool probabilities, double threshold, bool detailed)
{
	memset(m, 0, sizeof(*m));
	m->detailed = detailed;
	m->task = task;
	m->n = n;
	m->nclasses = nclasses;
	m->roc_auc = NAN;
	m->inertia = NAN;
	m->silhouette = NAN;
	m->explained_variance = NAN;

	if (task == ML_TASK_REGRESSION)
	{
		double		ymean = 0.0;
		double		ss_res = 0.0;
		double		ss_tot = 0.0;
		double		abs_sum = 0.0;

		for (int64 i = 0; i < n; i++)
			ymean += y[i];
		ymean /= (double) Max(n, 1);
		for (int64 i = 0; i < n; i++)
		{
			double		e = y[i] - outputs[i];

			ss_res += e * e;
			abs_sum += fabs(e);
			ss_tot += (y[i] - ymean) * (y[i] - ymean);
		}
		m->rmse = sqrt(ss_res / (double) Max(n, 1));
		m->mae = abs_sum / (double) Max(n, 1);
		m->r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : (ss_res == 0 ? 1.0 : 0.0);
		if (detailed && n > 0)
		{
			static const double q[5] = {0.05, 0.25, 0.5, 0.75, 0.95};
			double	   *res = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);

			for (int64 i = 0; i < n; i++)
				res[i] = y[i] - outputs[i];
			qsort(res, n, sizeof(double), double_cmp);
			for (int k = 0; k < 5; k++)
			{
				double		pos = q[k] * (double) (n - 1);
				int64		lo = (int64) floor(pos);
				int64		hi = Min(lo + 1, n - 1);

				m->residual_q[k] = res[lo] + (res[hi] - res[lo]) * (pos - (double) lo);
			}
			pfree(res);
		}
		return;
	}

	/* clustering and decomposition: the caller measures the model itself */
	if (task == ML_TASK_CLUSTERING || task == ML_TASK_DECOMPOSITION)
		return;
	if (task != ML_TASK_CLASSIFICATION)
		elog(ERROR, "no metrics for task %s", MLTaskName(task));

	m->confusion = palloc0(sizeof(int64) * nclasses * nclasses);
	{
		int64		correct = 0;
		double		ll = 0.0;

		for (int64 i = 0; i < n; i++)
		{
			const double *o = outputs + i * nclasses;
			int			actual = (int) y[i];
			int			pred = MetricsDecide(o, nclasses, threshold);
			double		p;

			m->confusion[actual * nclasses + pred]++;
			correct += (pred == actual);
			p = Min(Max(o[actual], 1e-15), 1.0 - 1e-15);
			ll -= log(p);
		}
		m->accuracy = safe_ratio((double) correct, (double) n);
		m->log_loss = probabilities ? ll / (double) Max(n, 1) : NAN;
	}

	/* per-class precision, recall, f1 */
	{
		double		psum = 0.0;
		double		rsum = 0.0;
		double		fsum = 0.0;

		for (int c = 0; c < nclasses; c++)
		{
			int64		tp = m->confusion[c * nclasses + c];
			int64		predicted = 0;
			int64		actual = 0;
			double		prec;
			double		rec;
			double		f1;

			for (int k = 0; k < nclasses; k++)
			{
				predicted += m->confusion[k * nclasses + c];
				actual += m->confusion[c * nclasses + k];
			}
			prec = safe_ratio((double) tp, (double) predicted);
			rec = safe_ratio((double) tp, (double) actual);
			f1 = safe_ratio(2.0 * prec * rec, prec + rec);
			if (nclasses == 2 && c == 1)
			{
				m->precision = prec;
				m->recall = rec;
				m->f1 = f1;
			}
			psum += prec;
			rsum += rec;
			fsum += f1;
		}
		if (nclasses > 2)
		{
			m->precision = psum / nclasses;
			m->recall = rsum / nclasses;
			m->f1 = fsum / nclasses;
		}
	}
	if (nclasses == 2)
		m->roc_auc = binary_roc_auc(y, outputs, n);
}

/*
 * MetricsSilhouette is the mean silhouette coefficient of n rows (X row-
 * major, n x p) with cluster labels, by Euclidean distance, as
 * scikit-learn computes it: a row alone in its cluster scores 0; NaN when
 * fewer than two clusters are present.
 */
double
MetricsSilhouette(const double *X, const int *labels, int n, int p)
{
	int			k = 0;
	double	   *sum;			/* per row: distance sums to each cluster */
	int		   *count;
	double		total = 0.0;
	int			present = 0;

	for (int i = 0; i < n; i++)
		k = Max(k, labels[i] + 1);
	count = palloc0(sizeof(int) * Max(k, 1));
	for (int i = 0; i < n; i++)
		count[labels[i]]++;
	for (int c = 0; c < k; c++)
		present += count[c] > 0;
	if (present < 2)
	{
		pfree(count);
		return NAN;
	}
	sum = palloc(sizeof(double) * k);
	for (int i = 0; i < n; i++)
	{
		const double *xi = X + (Size) i * p;
		double		a;
		double		b = INFINITY;

		memset(sum, 0, sizeof(double) * k);
		for (int j = 0; j < n; j++)
		{
			const double *xj = X + (Size) j * p;
			double		d2 = 0.0;

			for (int f = 0; f < p; f++)
				d2 += (xi[f] - xj[f]) * (xi[f] - xj[f]);
			sum[labels[j]] += sqrt(d2);
		}
		if (count[labels[i]] <= 1)
			continue;			/* a singleton scores 0 */
		a = sum[labels[i]] / (count[labels[i]] - 1);
		for (int c = 0; c < k; c++)
			if (c != labels[i] && count[c] > 0)
				b = Min(b, sum[c] / count[c]);
		total += (b - a) / Max(a, b);
		if ((i & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(sum);
	pfree(count);
	return total / n;
}

/*
 * MetricsToJsonb renders the metrics, with "evaluated_on" saying whether
 * they come from hold-out or training rows.
 */
Jsonb *
MetricsToJsonb(const Metrics *m, char **labels)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	for (int i = 0; i < lengthof(metric_defs); i++)
	{
		double		v;

		if (metric_defs[i].task != m->task)
			continue;
		if (!MetricsGet(m, metric_defs[i].name, &v))
			continue;
		JbKey(&st, metric_defs[i].name);
		JbFloat(&st, v);
	}
	if (m->task == ML_TASK_CLASSIFICATION)
	{
		JbKey(&st, "labels");
		JbBeginArray(&st);
		for (int c = 0; c < m->nclasses; c++)
			JbString(&st, labels[c]);
		JbEndArray(&st);
		JbKey(&st, "confusion_matrix");
		JbBeginArray(&st);
		for (int a = 0; a < m->nclasses; a++)
		{
			JbBeginArray(&st);
			for (int p = 0; p < m->nclasses; p++)
				JbInt(&st, m->confusion[a * m->nclasses + p]);
			JbEndArray(&st);
		}
		JbEndArray(&st);
		if (m->detailed)
		{
			/* per class: precision, recall, f1 and support (actual rows) */
			JbKey(&st, "per_class");
			JbBeginObject(&st);
			for (int c = 0; c < m->nclasses; c++)
			{
				int64		tp = m->confusion[c * m->nclasses + c];
				int64		predicted = 0;
				int64		actual = 0;
				double		prec;
				double		rec;

				for (int k = 0; k < m->nclasses; k++)
				{
					predicted += m->confusion[k * m->nclasses + c];
					actual += m->confusion[c * m->nclasses + k];
				}
				prec = safe_ratio((double) tp, (double) predicted);
				rec = safe_ratio((double) tp, (double) actual);
				JbKey(&st, labels[c]);
				JbBeginObject(&st);
				JbKey(&st, "precision");
				JbFloat(&st, prec);
				JbKey(&st, "recall");
				JbFloat(&st, rec);
				JbKey(&st, "f1");
				JbFloat(&st, safe_ratio(2.0 * prec * rec, prec + rec));
				JbKey(&st, "support");
				JbInt(&st, actual);
				JbEndObject(&st);
			}
			JbEndObject(&st);
		}
	}
	if (m->task == ML_TASK_REGRESSION && m->detailed && m->n > 0)
	{
		static const char *const qnames[5] = {"p05", "p25", "p50", "p75", "p95"};

		JbKey(&st, "residual_quantiles");
		JbBeginObject(&st);
		for (int k = 0; k < 5; k++)
		{
			JbKey(&st, qnames[k]);
			JbFloat(&st, m->residual_q[k]);
		}
		JbEndObject(&st);
	}
	JbKey(&st, "n");
	JbInt(&st, m->n);
	if (m->sampled_from > 0)
	{
		JbKey(&st, "sampled_from");
		JbInt(&st, m->sampled_from);
	}
	JbKey(&st, "evaluated_on");
	JbString(&st, m->evaluated_on ? m->evaluated_on : m->on_train ? "train" : "test");
	return JbFinishObject(&st);
}
