/*-------------------------------------------------------------------------
 * src/algo/kmeans.c
 *		k-means clustering: greedy k-means++ seeding and Lloyd iterations,
 *		with scikit-learn's parameters and meanings.
 *
 * Each of n_init runs seeds its centres by greedy k-means++: the first is
 * a row drawn uniformly, each next one the best (lowest resulting
 * inertia) of 2 + log(k) candidate rows drawn with probability
 * proportional to their squared distance to the nearest centre so far.
 * Lloyd steps follow, each one pass over the training rows that assigns
 * every row to its nearest centre and moves every centre to the mean of
 * its rows; a run stops when no row changes cluster, when the centres'
 * squared shifts summed are at most tol times the mean variance of the
 * features, or after max_iter steps.  A cluster left empty restarts at
 * the row farthest from its centre.  The run with the lowest inertia
 * wins, and its Lloyd steps are the telemetry kept (inertia before the
 * step, squared centre shift).  The random generator is splitmix64 seeded
 * from the seed hyperparameter, so a training run is reproducible.
 *
 * Distances are computed a chunk of rows at a time as
 *		||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2		(one dgemm a chunk)
 * on rows and centres shifted by the training mean, which keeps the
 * cancellation small when the features lie far from zero.  The matrix is
 * materialised when it fits within ml.max_train_memory; otherwise every
 * pass transforms the blocks again.
 *
 * predict writes each row's Euclidean distance to each centre, summing
 * squared differences directly (no cancellation).  k-means is distance
 * based, so features are standard-scaled by default; with preprocess
 * {"scale": "none"} it clusters the raw features as scikit-learn's KMeans
 * does.  The centres are kept in transformed units; ml.model_info also
 * shows them in the source's units.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>

#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"
#include "utils/memutils.h"

/* Most doubles in one chunk's distance matrix. */
#define KMEANS_CHUNK_DOUBLES (1 << 20)

typedef struct KMeansState
{
	double	   *centres;		/* k x p, row-major, transformed units */
	double		inertia;		/* of the training rows, best run */
	int			iterations;		/* Lloyd steps of the best run */
	bool		converged;		/* the best run stopped before max_iter */
	int			n_init;
	/* derived when fitted or read */
	double	   *centres_t;		/* p x k: the centres, transposed */
} KMeansState;

static const HyperparamSpec kmeans_params[] = {
	{"max_iter", HP_INT, "300", 1, 1000000, NULL, false},
	{"n_clusters", HP_INT, "8", 1, 100000, NULL, false},
	{"n_init", HP_INT, "10", 1, 1000, NULL, false},
	{"tol", HP_FLOAT, "0.0001", 0, 1e300, NULL, false},
};

/* What the passes over the training rows share. */
typedef struct KMeansFit
{
	TrainSet   *ts;
	int			p;
	int			k;
	double	   *mean;			/* p: the shift applied to rows and centres */
	double	   *xc;				/* a shifted block, column-major */
	double	   *xnorm;			/* its rows' squared norms */
	double	   *dist;			/* chunk x (k or trials) squared distances */
	int			chunk;			/* rows a dgemm covers */
	int		   *labels;			/* n: cluster of each row */
	double	   *mindist;		/* n: squared distance to that cluster */
	uint64		rng;			/* splitmix64 state */
} KMeansFit;

/* splitmix64: the next 64 random bits. */
static uint64
rng_next(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double
rng_uniform(uint64 *state)
{
	return (double) (rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : (x > y);
}

/* Reads training row i, shifted by the mean, into out[p]. */
static void
shifted_row(const KMeansFit *f, int64 i, double *out)
{
	const TrainSet *ts = f->ts;

	if (ts->X)
		for (int j = 0; j < f->p; j++)
			out[j] = ts->X[(Size) j * ts->n + i];
	else
		PipelineTransformBlock(ts->binding, ts->rows + i, 1, out, 1);
	for (int j = 0; j < f->p; j++)
		out[j] -= f->mean[j];
}

/* Shifts a block into f->xc (leading dimension blk->count) and f->xnorm. */
static void
shift_block(KMeansFit *f, const TrainBlock *blk)
{
	int			nb = blk->count;

	memset(f->xnorm, 0, sizeof(double) * nb);
	for (int j = 0; j < f->p; j++)
	{
		const double *src = blk->X + (Size) j * blk->ld;
		double	   *dst = f->xc + (Size) j * nb;

		for (int i = 0; i < nb; i++)
		{
			dst[i] = src[i] - f->mean[j];
			f->xnorm[i] += dst[i] * dst[i];
		}
	}
}

/*
 * Squared distances of rows r0..r0+len-1 of the shifted block (nb rows) to
 * m shifted centres C (row-major, squared norms cnorm) into f->dist,
 * column-major len x m.
 */
static void
chunk_distances(KMeansFit *f, int nb, int r0, int len, const double *C,
				const double *cnorm, int m)
{
	double	   *d = f->dist;

	if (f->p > 0)
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, len, m, f->p,
					-2.0, f->xc + r0, nb, C, f->p, 0.0, d, len);
	else
		memset(d, 0, sizeof(double) * len * m);
	for (int c = 0; c < m; c++)
		for (int i = 0; i < len; i++)
		{
			double		v = d[(Size) c * len + i] + f->xnorm[r0 + i] + cnorm[c];

			d[(Size) c * len + i] = v > 0.0 ? v : 0.0;
		}
}

static void
squared_norms(const double *C, int m, int p, double *out)
{
	for (int c = 0; c < m; c++)
	{
		double		s = 0.0;

		for (int j = 0; j < p; j++)
			s += C[(Size) c * p + j] * C[(Size) c * p + j];
		out[c] = s;
	}
}

/*
 * The training mean (into f->mean) and the absolute tolerance: tol times
 * the mean of the features' population variances, as scikit-learn has it.
 * Sums are taken around the first row so that large offsets cost no
 * precision.
 */
static double
mean_and_tolerance(KMeansFit *f, double tol)
{
	TrainSet   *ts = f->ts;
	int			p = f->p;
	double	   *first = palloc0(sizeof(double) * Max(p, 1));
	double	   *s1 = palloc0(sizeof(double) * Max(p, 1));
	double	   *s2 = palloc0(sizeof(double) * Max(p, 1));
	double		n = (double) ts->n;
	double		var = 0.0;
	TrainBlock	blk;

	TrainSetBlockBegin(ts, &blk);
	while (TrainSetNextBlock(ts, &blk))
	{
		if (blk.start == 0)
			for (int j = 0; j < p; j++)
				first[j] = blk.X[(Size) j * blk.ld];
		for (int j = 0; j < p; j++)
		{
			const double *src = blk.X + (Size) j * blk.ld;

			for (int i = 0; i < blk.count; i++)
			{
				double		d = src[i] - first[j];

				s1[j] += d;
				s2[j] += d * d;
			}
		}
	}
	TrainSetBlockEnd(&blk);

	for (int j = 0; j < p; j++)
	{
		f->mean[j] = first[j] + s1[j] / n;
		var += Max(s2[j] - s1[j] * s1[j] / n, 0.0) / n;
	}
	pfree(first);
	pfree(s1);
	pfree(s2);
	return p > 0 ? tol * var / p : 0.0;
}

/*
 * Lowers f->mindist to the squared distance to centre c (shifted, one
 * row), over every training row.
 */
static void
lower_mindist(KMeansFit *f, const double *c)
{
	double		cnorm;
	TrainBlock	blk;

	squared_norms(c, 1, f->p, &cnorm);
	TrainSetBlockBegin(f->ts, &blk);
	while (TrainSetNextBlock(f->ts, &blk))
	{
		shift_block(f, &blk);
		for (int r0 = 0; r0 < blk.count; r0 += f->chunk)
		{
			int			len = Min(f->chunk, blk.count - r0);

			chunk_distances(f, blk.count, r0, len, c, &cnorm, 1);
			for (int i = 0; i < len; i++)
			{
				int64		row = blk.start + r0 + i;

				f->mindist[row] = Min(f->mindist[row], f->dist[i]);
			}
		}
	}
	TrainSetBlockEnd(&blk);
}

/*
 * Greedy k-means++: fills C (k x p, shifted) and leaves f->mindist
 * holding each row's squared distance to its nearest centre.
 */
static void
seed_centres(KMeansFit *f, double *C)
{
	TrainSet   *ts = f->ts;
	int			p = f->p;
	int			k = f->k;
	int64		n = ts->n;
	int			trials = 2 + (int) log((double) k);
	double	   *targets = palloc(sizeof(double) * trials);
	double	   *cand = palloc(sizeof(double) * trials * Max(p, 1));
	double	   *cnorm = palloc(sizeof(double) * trials);
	double	   *pot = palloc(sizeof(double) * trials);
	double		current = 0.0;
	int64		first = Min((int64) (rng_uniform(&f->rng) * (double) n), n - 1);

	shifted_row(f, first, C);
	for (int64 i = 0; i < n; i++)
		f->mindist[i] = INFINITY;
	lower_mindist(f, C);
	for (int64 i = 0; i < n; i++)
		current += f->mindist[i];

	for (int c = 1; c < k; c++)
	{
		int64		row = 0;
		double		cum = 0.0;
		int			best = 0;
		TrainBlock	blk;

		CHECK_FOR_INTERRUPTS();

		/* candidates: the first rows whose cumulated distance reaches a target */
		for (int t = 0; t < trials; t++)
			targets[t] = rng_uniform(&f->rng) * current;
		qsort(targets, trials, sizeof(double), double_cmp);
		for (int t = 0; t < trials; t++)
		{
			while (row < n - 1 && cum + f->mindist[row] < targets[t])
				cum += f->mindist[row++];
			shifted_row(f, row, cand + (Size) t * p);
		}

		/* the inertia each candidate would leave */
		squared_norms(cand, trials, p, cnorm);
		memset(pot, 0, sizeof(double) * trials);
		TrainSetBlockBegin(ts, &blk);
		while (TrainSetNextBlock(ts, &blk))
		{
			shift_block(f, &blk);
			for (int r0 = 0; r0 < blk.count; r0 += f->chunk)
			{
				int			len = Min(f->chunk, blk.count - r0);
				const double *md = f->mindist + blk.start + r0;

				chunk_distances(f, blk.count, r0, len, cand, cnorm, trials);
				for (int t = 0; t < trials; t++)
				{
					const double *d = f->dist + (Size) t * len;
					double		s = 0.0;

					for (int i = 0; i < len; i++)
						s += Min(md[i], d[i]);
					pot[t] += s;
				}
			}
		}
		TrainSetBlockEnd(&blk);

		for (int t = 1; t < trials; t++)
			if (pot[t] < pot[best])
				best = t;
		memcpy(C + (Size) c * p, cand + (Size) best * p, sizeof(double) * p);
		lower_mindist(f, C + (Size) c * p);
		current = 0.0;
		for (int64 i = 0; i < n; i++)
			current += f->mindist[i];
	}
	pfree(targets);
	pfree(cand);
	pfree(cnorm);
	pfree(pot);
}

/*
 * Assigns every row to its nearest centre of C (shifted), setting
 * f->labels and f->mindist; with sums, also adds each row into its
 * cluster's sum and count.  Returns how many rows changed cluster, and
 * the inertia in *inertia.
 */
static int64
assign_rows(KMeansFit *f, const double *C, double *sums, double *counts,
			double *inertia)
{
	int			p = f->p;
	int			k = f->k;
	double	   *cnorm = palloc(sizeof(double) * k);
	int64		changed = 0;
	double		total = 0.0;
	TrainBlock	blk;

	squared_norms(C, k, p, cnorm);
	if (sums)
	{
		memset(sums, 0, sizeof(double) * k * Max(p, 1));
		memset(counts, 0, sizeof(double) * k);
	}
	TrainSetBlockBegin(f->ts, &blk);
	while (TrainSetNextBlock(f->ts, &blk))
	{
		shift_block(f, &blk);
		for (int r0 = 0; r0 < blk.count; r0 += f->chunk)
		{
			int			len = Min(f->chunk, blk.count - r0);

			chunk_distances(f, blk.count, r0, len, C, cnorm, k);
			for (int i = 0; i < len; i++)
			{
				int64		row = blk.start + r0 + i;
				int			best = 0;
				double		bd = f->dist[i];

				for (int c = 1; c < k; c++)
					if (f->dist[(Size) c * len + i] < bd)
					{
						bd = f->dist[(Size) c * len + i];
						best = c;
					}
				changed += f->labels[row] != best;
				f->labels[row] = best;
				f->mindist[row] = bd;
				total += bd;
				if (sums)
				{
					double	   *s = sums + (Size) best * p;

					counts[best] += 1.0;
					for (int j = 0; j < p; j++)
						s[j] += f->xc[(Size) j * blk.count + r0 + i];
				}
			}
		}
	}
	TrainSetBlockEnd(&blk);
	pfree(cnorm);
	*inertia = total;
	return changed;
}

/*
 * Gives each empty cluster the row farthest from its centre, taken from a
 * cluster that keeps at least one row, as scikit-learn does; returns how
 * many clusters it refilled.
 */
static int
relocate_empty_clusters(KMeansFit *f, double *sums, double *counts)
{
	int			p = f->p;
	int64		n = f->ts->n;
	int			nempty = 0;
	int			refilled = 0;
	int64	   *far;
	int			nfar = 0;
	double	   *x;

	for (int c = 0; c < f->k; c++)
		nempty += counts[c] == 0.0;
	if (nempty == 0)
		return 0;

	/* the nempty farthest rows, farthest first, from clusters of 2+ rows */
	far = palloc(sizeof(int64) * nempty);
	for (int64 i = 0; i < n; i++)
	{
		int			at;

		if (counts[f->labels[i]] < 2.0 ||
			(nfar == nempty && f->mindist[i] <= f->mindist[far[nfar - 1]]))
			continue;
		at = nfar < nempty ? nfar++ : nfar - 1;
		while (at > 0 && f->mindist[far[at - 1]] < f->mindist[i])
		{
			far[at] = far[at - 1];
			at--;
		}
		far[at] = i;
	}

	x = palloc(sizeof(double) * Max(p, 1));
	for (int c = 0, next = 0; c < f->k && next < nfar; c++)
	{
		int64		row;
		int			from;

		if (counts[c] != 0.0)
			continue;
		row = far[next++];
		from = f->labels[row];
		if (counts[from] < 2.0)
			continue;
		shifted_row(f, row, x);
		for (int j = 0; j < p; j++)
		{
			sums[(Size) from * p + j] -= x[j];
			sums[(Size) c * p + j] = x[j];
		}
		counts[from] -= 1.0;
		counts[c] = 1.0;
		f->labels[row] = c;
		f->mindist[row] = 0.0;
		refilled++;
	}
	pfree(x);
	pfree(far);
	return refilled;
}

/*
 * One run: seeding, then Lloyd steps.  C receives the centres (shifted);
 * returns the inertia of the training rows under them.
 */
static double
kmeans_run(KMeansFit *f, double *C, int max_iter, double tol,
		   int *iterations, bool *converged)
{
	int			p = f->p;
	int			k = f->k;
	double	   *sums = palloc(sizeof(double) * k * Max(p, 1));
	double	   *counts = palloc(sizeof(double) * k);
	double		inertia;
	int			iter;

	seed_centres(f, C);
	for (int64 i = 0; i < f->ts->n; i++)
		f->labels[i] = -1;

	*converged = false;
	for (iter = 0; iter < max_iter; iter++)
	{
		int64		changed;
		int			refilled;
		double		shift = 0.0;

		CHECK_FOR_INTERRUPTS();
		changed = assign_rows(f, C, sums, counts, &inertia);
		refilled = relocate_empty_clusters(f, sums, counts);
		for (int c = 0; c < k; c++)
		{
			if (counts[c] == 0.0)
				continue;		/* no row to move to: it stays */
			for (int j = 0; j < p; j++)
			{
				double		v = sums[(Size) c * p + j] / counts[c];
				double		d = v - C[(Size) c * p + j];

				shift += d * d;
				C[(Size) c * p + j] = v;
			}
		}
		/* a debugger rule may end the iterations here */
		if (!TrainLogAdd(f->ts, "change", iter + 1, inertia, NAN, shift))
			break;
		if ((changed == 0 && refilled == 0) || shift <= tol)
		{
			*converged = true;
			break;
		}
	}
	*iterations = Min(iter + 1, max_iter);

	/* the inertia under the final centres */
	assign_rows(f, C, NULL, NULL, &inertia);
	pfree(sums);
	pfree(counts);
	return inertia;
}

/*
 * Keeps the telemetry of the best run only: entries from mark on are the
 * run just finished, those before it the best earlier run's.
 */
static void
keep_best_run_log(TrainLog *log, int mark, bool better)
{
	if (log == NULL)
		return;
	if (!better)
		log->n = mark;
	else if (mark > 0)
	{
		memmove(log->entries, log->entries + mark,
				sizeof(TrainLogEntry) * (log->n - mark));
		log->n -= mark;
	}
}

/* Derives the transposed centres that predict reads. */
static void
kmeans_prepare(KMeansState *st, int k, int p)
{
	st->centres_t = palloc(sizeof(double) * Max((Size) k * p, 1));
	for (int c = 0; c < k; c++)
		for (int j = 0; j < p; j++)
			st->centres_t[(Size) j * k + c] = st->centres[(Size) c * p + j];
}

static void
kmeans_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	KMeansState *st = palloc0(sizeof(KMeansState));
	KMeansFit	f;
	int			k = HpInt(hp, "n_clusters");
	int			n_init = HpInt(hp, "n_init");
	int			max_iter = HpInt(hp, "max_iter");
	int			p = ts->p;
	int			trials = 2 + (int) log((double) k);
	double		tol;
	double	   *C;
	double		best = INFINITY;

	if (k > ts->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n_clusters (%d) is greater than the number of training rows (%lld)",
						k, (long long) ts->n),
				 errhint("Lower n_clusters, or train on more rows.")));

	memset(&f, 0, sizeof(f));
	f.ts = ts;
	f.p = p;
	f.k = k;
	f.rng = (uint64) hp->seed;
	f.mean = palloc0(sizeof(double) * Max(p, 1));
	f.xc = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(p, 1));
	f.xnorm = palloc(sizeof(double) * TRAIN_BLOCK_ROWS);
	f.chunk = Max(1, Min(TRAIN_BLOCK_ROWS, KMEANS_CHUNK_DOUBLES / Max(k, trials)));
	f.dist = palloc(sizeof(double) * f.chunk * Max(k, trials));
	f.labels = palloc_extended(sizeof(int) * ts->n, MCXT_ALLOC_HUGE);
	f.mindist = palloc_extended(sizeof(double) * ts->n, MCXT_ALLOC_HUGE);
	C = palloc(sizeof(double) * k * Max(p, 1));
	st->centres = palloc(sizeof(double) * k * Max(p, 1));

	TrainSetMaterialize(ts);
	MLApplyThreadLimit(2.0 * f.chunk * p * Max(k, trials));
	tol = mean_and_tolerance(&f, HpFloat(hp, "tol"));

	for (int run = 0; run < n_init; run++)
	{
		int			mark = ts->log ? ts->log->n : 0;
		int			iterations;
		bool		converged;
		double		inertia = kmeans_run(&f, C, max_iter, tol, &iterations, &converged);

		keep_best_run_log(ts->log, mark, inertia < best);
		if (inertia < best)
		{
			best = inertia;
			memcpy(st->centres, C, sizeof(double) * k * p);
			st->iterations = iterations;
			st->converged = converged;
		}
	}

	/* back from the shifted coordinates */
	for (int c = 0; c < k; c++)
		for (int j = 0; j < p; j++)
			st->centres[(Size) c * p + j] += f.mean[j];
	st->inertia = best;
	st->n_init = n_init;
	kmeans_prepare(st, k, p);
	m->noutputs = k;
	m->state = st;

	pfree(f.mean);
	pfree(f.xc);
	pfree(f.xnorm);
	pfree(f.dist);
	pfree(f.labels);
	pfree(f.mindist);
	pfree(C);
}

/* Euclidean distances of n rows to the k centres, n x k row-major. */
static void
kmeans_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const KMeansState *st = m->state;
	int			k = m->noutputs;

	memset(out, 0, sizeof(double) * n * k);
	for (int j = 0; j < m->p; j++)
	{
		const double *x = X + (Size) j * ld;
		const double *cj = st->centres_t + (Size) j * k;

		for (int i = 0; i < n; i++)
		{
			double	   *o = out + (Size) i * k;

			for (int c = 0; c < k; c++)
			{
				double		d = x[i] - cj[c];

				o[c] += d * d;
			}
		}
	}
	for (Size i = 0; i < (Size) n * k; i++)
		out[i] = sqrt(out[i]);
}

static const double *
kmeans_centres(const AlgoModel *m)
{
	return ((const KMeansState *) m->state)->centres;
}

static void
kmeans_serialize(const AlgoModel *m, StringInfo buf)
{
	const KMeansState *st = m->state;

	pq_sendint32(buf, st->n_init);
	pq_sendint32(buf, st->iterations);
	pq_sendbyte(buf, st->converged);
	pq_sendfloat8(buf, st->inertia);
	BlobPutFloat8Array(buf, st->centres, (int64) m->noutputs * m->p);
}

static void
kmeans_deserialize(AlgoModel *m, BlobReader *r)
{
	KMeansState *st = palloc0(sizeof(KMeansState));
	int64		ncentre = (int64) m->noutputs * m->p;

	st->n_init = BlobGetInt32(r);
	st->iterations = BlobGetInt32(r);
	st->converged = BlobGetBool(r);
	st->inertia = BlobGetFloat8(r);
	if (ncentre * 8 > (int64) (r->buf.len - r->buf.cursor))
		BlobCorrupt(r, "The k-means centres are longer than the blob.");
	st->centres = palloc(sizeof(double) * Max(ncentre, 1));
	BlobGetFloat8Array(r, st->centres, ncentre);
	kmeans_prepare(st, m->noutputs, m->p);
	m->state = st;
}

static void
kmeans_describe(const AlgoModel *m, char **feature_names, char **labels,
				JsonbParseState **js)
{
	const KMeansState *st = m->state;

	JbKey(js, "n_clusters");
	JbInt(js, m->noutputs);
	JbKey(js, "centroids");
	JbBeginArray(js);
	for (int c = 0; c < m->noutputs; c++)
	{
		JbBeginObject(js);
		for (int j = 0; j < m->p; j++)
		{
			JbKey(js, feature_names[j]);
			JbFloat(js, st->centres[(Size) c * m->p + j]);
		}
		JbEndObject(js);
	}
	JbEndArray(js);
	JbKey(js, "inertia");
	JbFloat(js, st->inertia);
	JbKey(js, "iterations");
	JbInt(js, st->iterations);
	JbKey(js, "converged");
	JbBool(js, st->converged);
	JbKey(js, "n_init");
	JbInt(js, st->n_init);
}

const AlgoSpec kmeans_algo = {
	.name = "kmeans",
	.tasks = ML_TASK_BIT(ML_TASK_CLUSTERING),
	.default_scale = SCALE_STANDARD,
	.params = kmeans_params,
	.nparams = lengthof(kmeans_params),
	.fit = kmeans_fit,
	.predict = kmeans_predict,
	.serialize = kmeans_serialize,
	.deserialize = kmeans_deserialize,
	.describe = kmeans_describe,
	.centres = kmeans_centres,
};
