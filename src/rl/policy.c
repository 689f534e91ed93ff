/*-------------------------------------------------------------------------
 * src/rl/policy.c
 *		The bandit policies: LinUCB, linear Gaussian Thompson sampling,
 *		Beta-Bernoulli Thompson sampling and epsilon-greedy, on the
 *		per-arm states described in rl.h.
 *
 * A choice solves each arm's ridge system through its Cholesky factor
 * A = L L' (O(p^3 / 6) per arm; p is at most BANDIT_MAX_DIM + 1, and a
 * few dozen in practice), so the state stays the exact sums rather than an
 * inverse that drifts with Sherman-Morrison updates.  Random draws come
 * from a generator seeded with the bandit's seed and the decision's id, so
 * a decision can be replayed exactly.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"

#include "rl/rl.h"

static const char *const algorithm_names[] = {"linucb", "thompson", "epsilon_greedy"};

const char *
BanditAlgorithmName(BanditAlgorithm a)
{
	return algorithm_names[a];
}

bool
BanditAlgorithmFromName(const char *name, BanditAlgorithm *a)
{
	for (int i = 0; i < lengthof(algorithm_names); i++)
		if (strcmp(name, algorithm_names[i]) == 0)
		{
			*a = (BanditAlgorithm) i;
			return true;
		}
	return false;
}

int
BanditStateLength(const BanditParams *bp)
{
	return bp->beta ? 2 : bp->p * bp->p + bp->p;
}

void
BanditStateInit(const BanditParams *bp, double *state)
{
	int			p = bp->p;

	if (bp->beta)
	{
		state[0] = bp->prior_alpha;
		state[1] = bp->prior_beta;
		return;
	}
	memset(state, 0, sizeof(double) * (p * p + p));
	for (int i = 0; i < p; i++)
		state[i * p + i] = bp->lambda;
}

/* x = the context, then 1 when the bandit has an intercept. */
void
BanditFeatures(const BanditParams *bp, const double *context, double *x)
{
	for (int i = 0; i < bp->dim; i++)
		x[i] = context[i];
	if (bp->intercept)
		x[bp->dim] = 1.0;
}

void
BanditUpdate(const BanditParams *bp, double *state, const double *x, double reward)
{
	int			p = bp->p;
	double	   *b = state + p * p;

	if (bp->beta)
	{
		state[0] += reward;
		state[1] += 1.0 - reward;
		return;
	}
	for (int i = 0; i < p; i++)
	{
		double		xi = x[i];

		for (int j = 0; j < p; j++)
			state[i * p + j] += xi * x[j];
		b[i] += reward * xi;
	}
}

/* ---------- linear algebra on small dense matrices ---------- */

/*
 * Lower Cholesky factor of the p x p matrix a into l (row-major); false
 * when a is not positive definite, which the ridge prior rules out unless
 * the state was damaged.
 */
static bool
cholesky(const double *a, double *l, int p)
{
	for (int i = 0; i < p; i++)
	{
		for (int j = 0; j <= i; j++)
		{
			double		s = a[i * p + j];

			for (int k = 0; k < j; k++)
				s -= l[i * p + k] * l[j * p + k];
			if (i == j)
			{
				if (!(s > 0.0) || !isfinite(s))
					return false;
				l[i * p + i] = sqrt(s);
			}
			else
				l[i * p + j] = s / l[j * p + j];
		}
		for (int j = i + 1; j < p; j++)
			l[i * p + j] = 0.0;
	}
	return true;
}

/* Solves L y = r (forward substitution). */
static void
solve_lower(const double *l, const double *r, double *y, int p)
{
	for (int i = 0; i < p; i++)
	{
		double		s = r[i];

		for (int k = 0; k < i; k++)
			s -= l[i * p + k] * y[k];
		y[i] = s / l[i * p + i];
	}
}

/* Solves L' y = r (back substitution). */
static void
solve_upper(const double *l, const double *r, double *y, int p)
{
	for (int i = p - 1; i >= 0; i--)
	{
		double		s = r[i];

		for (int k = i + 1; k < p; k++)
			s -= l[k * p + i] * y[k];
		y[i] = s / l[i * p + i];
	}
}

static double
dot(const double *a, const double *b, int p)
{
	double		s = 0.0;

	for (int i = 0; i < p; i++)
		s += a[i] * b[i];
	return s;
}

/* ---------- random draws ---------- */

static double
draw_uniform_open(pg_prng_state *rng)
{
	/* (0, 1]: safe under log() */
	return 1.0 - pg_prng_double(rng);
}

static double
draw_normal(pg_prng_state *rng)
{
	double		u = draw_uniform_open(rng);
	double		w = pg_prng_double(rng);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * w);
}

/* Gamma(shape, 1) by Marsaglia and Tsang's method (2000). */
static double
draw_gamma(pg_prng_state *rng, double shape)
{
	double		d,
				c;

	if (shape < 1.0)
		return draw_gamma(rng, shape + 1.0) * pow(draw_uniform_open(rng), 1.0 / shape);

	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;)
	{
		double		z,
					v,
					u;

		do
		{
			z = draw_normal(rng);
			v = 1.0 + c * z;
		} while (v <= 0.0);
		v = v * v * v;
		u = draw_uniform_open(rng);
		if (u < 1.0 - 0.0331 * z * z * z * z ||
			log(u) < 0.5 * z * z + d * (1.0 - v + log(v)))
			return d * v;
	}
}

static double
draw_beta(pg_prng_state *rng, double a, double b)
{
	double		x = draw_gamma(rng, a);
	double		y = draw_gamma(rng, b);

	return x / (x + y);
}

/* ---------- choosing ---------- */

/* Whether a score ties with the best one (scores are never NaN here). */
static inline bool
is_top(double score, double best)
{
	return score == best || score >= best - 1e-12 * fabs(best);
}

/*
 * Picks the arm with the highest score, ties broken uniformly at random
 * (all arms tie before the first reward); *nties gets the number of tied
 * arms.
 */
static int
argmax_random_tie(const double *score, int narms, pg_prng_state *rng, int *nties)
{
	double		best = -INFINITY;
	int			n = 0;
	int			pick;

	for (int a = 0; a < narms; a++)
		if (score[a] > best)
			best = score[a];
	for (int a = 0; a < narms; a++)
		if (is_top(score[a], best))
			n++;
	pick = (int) pg_prng_uint64_range(rng, 0, n - 1);
	*nties = n;
	for (int a = 0; a < narms; a++)
		if (is_top(score[a], best) && pick-- == 0)
			return a;
	return 0;					/* not reached */
}

/*
 * BanditChoose scores every arm for the features x (BanditFeatures) and
 * picks one.  rewards_so_far drives epsilon's decay; draw_key (the
 * decision's id) seeds the draws.
 */
BanditChoice
BanditChoose(const BanditParams *bp, int narms, double *const *states,
			 const double *x, int64 rewards_so_far, uint64 draw_key)
{
	int			p = bp->p;
	double	   *score = palloc(sizeof(double) * narms);
	double	   *l = NULL;
	double	   *y = NULL;
	double	   *theta = NULL;
	double	   *z = NULL;
	pg_prng_state rng;
	BanditChoice ch;
	int			nties = 1;
	double		eps = 0.0;
	bool		explore = false;

	pg_prng_seed(&rng, bp->seed ^ (draw_key * UINT64CONST(0x9E3779B97F4A7C15)));
	ch.has_propensity = true;

	if (bp->algorithm == BANDIT_EPSILON_GREEDY)
	{
		eps = bp->epsilon / (1.0 + bp->decay * (double) rewards_so_far);
		explore = pg_prng_double(&rng) < eps;
	}

	if (!bp->beta)
	{
		l = palloc(sizeof(double) * p * p);
		y = palloc(sizeof(double) * p);
		theta = palloc(sizeof(double) * p);
		z = palloc(sizeof(double) * p);
	}

	for (int a = 0; a < narms; a++)
	{
		const double *s = states[a];

		CHECK_FOR_INTERRUPTS();
		if (bp->beta)
		{
			score[a] = draw_beta(&rng, s[0], s[1]);
			continue;
		}
		if (!cholesky(s, l, p))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the state of arm %d of this bandit is not positive definite", a + 1)));
		/* theta = A^-1 b */
		solve_lower(l, s + p * p, y, p);
		solve_upper(l, y, theta, p);
		switch (bp->algorithm)
		{
			case BANDIT_LINUCB:
				/* mean + alpha * sqrt(x' A^-1 x), and x' A^-1 x = |L^-1 x|^2 */
				solve_lower(l, x, y, p);
				score[a] = dot(theta, x, p) + bp->alpha * sqrt(dot(y, y, p));
				break;
			case BANDIT_THOMPSON:
				/* theta + v L'^-1 z has covariance v^2 A^-1 */
				for (int i = 0; i < p; i++)
					z[i] = draw_normal(&rng);
				solve_upper(l, z, y, p);
				for (int i = 0; i < p; i++)
					theta[i] += bp->v * y[i];
				score[a] = dot(theta, x, p);
				break;
			case BANDIT_EPSILON_GREEDY:
				score[a] = dot(theta, x, p);
				break;
		}
	}

	for (int a = 0; a < narms; a++)
		if (isnan(score[a]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the score of arm %d is not a number for this context", a + 1),
					 errhint("Context values this large overflow; scale the context.")));

	if (explore)
		ch.arm = (int) pg_prng_uint64_range(&rng, 0, narms - 1);
	else
		ch.arm = argmax_random_tie(score, narms, &rng, &nties);
	ch.score = score[ch.arm];

	switch (bp->algorithm)
	{
		case BANDIT_LINUCB:
			ch.propensity = 1.0 / nties;
			break;
		case BANDIT_THOMPSON:
			ch.propensity = 0.0;
			ch.has_propensity = false;
			break;
		case BANDIT_EPSILON_GREEDY:
			{
				/* the greedy set: the arms tied for the best score */
				double		best = -INFINITY;
				int			ngreedy = 0;
				bool		chosen_greedy;

				for (int a = 0; a < narms; a++)
					best = Max(best, score[a]);
				for (int a = 0; a < narms; a++)
					if (is_top(score[a], best))
						ngreedy++;
				chosen_greedy = is_top(score[ch.arm], best);
				ch.propensity = eps / narms + (chosen_greedy ? (1.0 - eps) / ngreedy : 0.0);
			}
			break;
	}

	pfree(score);
	if (l)
	{
		pfree(l);
		pfree(y);
		pfree(theta);
		pfree(z);
	}
	return ch;
}
