/*-------------------------------------------------------------------------
 * src/data/split.c
 *		The deterministic train/test split.
 *
 * Every row gets a pseudo-random key from a hash of its ordinal and the
 * seed; within each stratum (class, for classification) the rows with the
 * smallest keys form the test set.  The same rows and seed always give the
 * same split, so a champion and a challenger trained on one source are
 * judged on the same hold-out rows.
 *-------------------------------------------------------------------------
 */
#include "data/data.h"

#include <math.h>

#include "miscadmin.h"

typedef struct KeyedRow
{
	uint64		key;
	int64		row;
} KeyedRow;

/* splitmix64: a well-mixed 64-bit hash of the row ordinal and the seed. */
static uint64
split_key(int64 row, int64 seed)
{
	uint64		z = (uint64) row + (uint64) seed * UINT64CONST(0x9E3779B97F4A7C15);

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static int
keyed_row_cmp(const void *a, const void *b)
{
	const KeyedRow *x = a;
	const KeyedRow *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->row < y->row ? -1 : (x->row > y->row);
}

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y);
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
	KeyedRow   *rows = palloc_extended(sizeof(KeyedRow) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	int64		ntr = 0;
	int64		nte = 0;

	for (int64 i = 0; i < nrows; i++)
		group_size[strata ? (int) strata[i] : 0]++;
	for (int g = 0; g < ngroups; g++)
		group_start[g + 1] = group_start[g] + group_size[g];

	for (int64 i = 0; i < nrows; i++)
	{
		int			g = strata ? (int) strata[i] : 0;
		KeyedRow   *kr = &rows[group_start[g] + group_fill[g]++];

		kr->key = split_key(i, seed);
		kr->row = i;
	}

	*train = palloc_extended(sizeof(int64) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	*test = palloc_extended(sizeof(int64) * Max(nrows, 1), MCXT_ALLOC_HUGE);
	for (int g = 0; g < ngroups; g++)
	{
		KeyedRow   *grp = &rows[group_start[g]];
		int64		n = group_size[g];
		int64		ntest_g = (int64) floor(test_size * (double) n + 0.5);

		qsort(grp, n, sizeof(KeyedRow), keyed_row_cmp);
		for (int64 i = 0; i < n; i++)
		{
			if (i < ntest_g)
				(*test)[nte++] = grp[i].row;
			else
				(*train)[ntr++] = grp[i].row;
		}
		CHECK_FOR_INTERRUPTS();
	}
	qsort(*train, ntr, sizeof(int64), int64_cmp);
	qsort(*test, nte, sizeof(int64), int64_cmp);
	*ntrain = ntr;
	*ntest = nte;

	pfree(rows);
	pfree(group_size);
	pfree(group_start);
	pfree(group_fill);
}
