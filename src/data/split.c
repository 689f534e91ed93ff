/*-------------------------------------------------------------------------
 * src/data/split.c
 *		The deterministic train/test split.
 *
 * Every row gets a pseudo-random key from a hash of its ordinal and the
 * seed; within each stratum (class, for classification) the rows with the
 * smallest keys (ties to the lower row) form the test set.  The same rows
 * and seed always give the same split, so a champion and a challenger
 * trained on one source are judged on the same hold-out rows.
 *
 * The k-th smallest key of each stratum is found by quickselect, and one
 * pass in row order then deals the rows out, so both lists come out
 * sorted without sorting anything: O(n) time.
 *-------------------------------------------------------------------------
 */
#include "data/data.h"

#include <math.h>

#include "miscadmin.h"

/*
 * SplitHash (splitmix64) is a well-mixed 64-bit hash of an ordinal and a
 * seed: the rows' keys here, and the draws of a random search.
 */
uint64
SplitHash(int64 ordinal, int64 seed)
{
	uint64		z = (uint64) ordinal + (uint64) seed * UINT64CONST(0x9E3779B97F4A7C15);

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/*
 * SplitSelectKth returns the k-th smallest (0-based) of v[0..n-1] by
 * quickselect, reordering v.
 */
uint64
SplitSelectKth(uint64 *v, int64 n, int64 k)
{
	int64		lo = 0;
	int64		hi = n - 1;

	while (lo < hi)
	{
		uint64		pivot = v[lo + (hi - lo) / 2];
		int64		i = lo;
		int64		j = hi;

		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				uint64		t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

/*
 * SplitRows divides rows 0..nrows-1 into a train and a test set, each in
 * ascending row order.  strata (may be NULL) gives each row's stratum as a
 * number in 0..nstrata-1; each stratum contributes round(test_size * its
 * size) rows to the test set.
 */
void
SplitRows(int64 nrows, const double *strata, int nstrata, double test_size,
		  int64 seed, int64 **train, int64 *ntrain, int64 **test, int64 *ntest)
{
	int			ngroups = strata ? nstrata : 1;
	int64	   *group_size = palloc0(sizeof(int64) * ngroups);
	int64	   *group_start = palloc0(sizeof(int64) * (ngroups + 1));
	int64	   *group_fill = palloc0(sizeof(int64) * ngroups);
	uint64	   *threshold = palloc0(sizeof(uint64) * ngroups);
	int64	   *below = palloc0(sizeof(int64) * ngroups);	/* test rows left */
	uint64	   *keys = palloc_extended(sizeof(uint64) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	int64		ntr = 0;
	int64		nte = 0;

	for (int64 i = 0; i < nrows; i++)
		group_size[strata ? (int) strata[i] : 0]++;
	for (int g = 0; g < ngroups; g++)
		group_start[g + 1] = group_start[g] + group_size[g];

	/* keys grouped by stratum */
	for (int64 i = 0; i < nrows; i++)
	{
		int			g = strata ? (int) strata[i] : 0;

		keys[group_start[g] + group_fill[g]++] = SplitHash(i, seed);
	}

	/*
	 * Per stratum, the test rows are those with a key below the threshold,
	 * plus the first rows whose key equals it, up to the stratum's count.
	 */
	for (int g = 0; g < ngroups; g++)
	{
		int64		n = group_size[g];
		int64		ntest_g = (int64) floor(test_size * (double) n + 0.5);
		uint64	   *grp = keys + group_start[g];

		below[g] = ntest_g;
		if (ntest_g == 0)
		{
			threshold[g] = 0;
			continue;
		}
		threshold[g] = SplitSelectKth(grp, n, ntest_g - 1);
		/* rows strictly below the threshold all go to the test set */
		for (int64 i = 0; i < n; i++)
			if (grp[i] < threshold[g])
				below[g]--;
		CHECK_FOR_INTERRUPTS();
	}
	pfree(keys);

	*train = palloc_extended(sizeof(int64) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	*test = palloc_extended(sizeof(int64) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < nrows; i++)
	{
		int			g = strata ? (int) strata[i] : 0;
		uint64		key = SplitHash(i, seed);
		bool		is_test = key < threshold[g];

		if (!is_test && key == threshold[g] && below[g] > 0)
		{
			is_test = true;
			below[g]--;
		}
		if (is_test)
			(*test)[nte++] = i;
		else
			(*train)[ntr++] = i;
	}
	*ntrain = ntr;
	*ntest = nte;

	pfree(group_size);
	pfree(group_start);
	pfree(group_fill);
	pfree(threshold);
	pfree(below);
}

typedef struct FoldKey
{
	int			stratum;
	uint64		key;
	int64		row;
} FoldKey;

static int
fold_key_cmp(const void *a, const void *b)
{
	const FoldKey *x = a;
	const FoldKey *y = b;

	if (x->stratum != y->stratum)
		return x->stratum < y->stratum ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

/*
 * SplitFolds assigns each of rows 0..nrows-1 to one of k folds, for k-fold
 * cross-validation: within each stratum (strata[i] in 0..nstrata-1, or one
 * stratum when strata is NULL) the rows, in a seeded random order, are
 * dealt to the folds in turn, so fold sizes differ by at most one per
 * stratum.  fold[i] receives row i's fold.
 */
void
SplitFolds(int64 nrows, const double *strata, int k, int64 seed, int *fold)
{
	FoldKey    *keys = palloc_extended(sizeof(FoldKey) * Max(nrows, 1), MCXT_ALLOC_HUGE);

	for (int64 i = 0; i < nrows; i++)
	{
		keys[i].stratum = strata ? (int) strata[i] : 0;
		keys[i].key = SplitHash(i, seed ^ INT64CONST(0x5DEECE66D));
		keys[i].row = i;
	}
	qsort(keys, nrows, sizeof(FoldKey), fold_key_cmp);
	/*
	 * One count runs on across strata: each stratum starts at the fold after
	 * the last one dealt, which also evens out the folds' total sizes.
	 */
	for (int64 i = 0; i < nrows; i++)
		fold[keys[i].row] = (int) (i % k);
	pfree(keys);
}
