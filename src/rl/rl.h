/*-------------------------------------------------------------------------
 * src/rl/rl.h
 *		Contextual bandits: the policies (policy.c), free of SQL, and the
 *		SQL functions that keep their state in ml.bandit_arms (bandit.c).
 *
 * Every linear policy keeps, per arm, the ridge statistics of the
 * contexts it was rewarded for: A = lambda I + sum x x' (p x p, row-major)
 * followed by b = sum r x (p), where x is the context with an intercept 1
 * appended when the bandit has one.  Sums commute, so concurrent rewards
 * give the same state in any order.  Thompson sampling without a context
 * is Beta-Bernoulli: the state is (alpha, beta).
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_RL_H
#define PGMAKER_RL_H

#include "postgres.h"

typedef enum BanditAlgorithm
{
	BANDIT_LINUCB = 0,
	BANDIT_THOMPSON,
	BANDIT_EPSILON_GREEDY
} BanditAlgorithm;

/*
 * Largest context and arm count a bandit may have, and the most state
 * values (arms x (p^2 + p)) a choice reads: 8 MB.
 */
#define BANDIT_MAX_DIM 128
#define BANDIT_MAX_ARMS 1000
#define BANDIT_MAX_STATE_VALUES (1024 * 1024)

typedef struct BanditParams
{
	BanditAlgorithm algorithm;
	int			dim;			/* length of the context the caller passes */
	bool		intercept;		/* append a constant 1 to the context */
	int			p;				/* dim + intercept: the model's width */
	bool		beta;			/* Beta-Bernoulli (thompson, no context) */
	double		alpha;			/* linucb: width of the confidence bound */
	double		lambda;			/* ridge prior of the linear policies */
	double		v;				/* thompson: scale of the posterior draw */
	double		epsilon;		/* epsilon_greedy: exploration rate ... */
	double		decay;			/* ... divided by 1 + decay * rewards so far */
	double		prior_alpha;	/* Beta-Bernoulli prior */
	double		prior_beta;
	uint64		seed;			/* with the decision id, seeds each draw */
} BanditParams;

typedef struct BanditChoice
{
	int			arm;			/* 0-based index into the arms */
	double		score;			/* the chosen arm's score */
	double		propensity;		/* probability the policy chose it */
	bool		has_propensity; /* false when not known (Thompson) */
} BanditChoice;

extern const char *BanditAlgorithmName(BanditAlgorithm a);
extern bool BanditAlgorithmFromName(const char *name, BanditAlgorithm *a);
extern int	BanditStateLength(const BanditParams *bp);
extern void BanditStateInit(const BanditParams *bp, double *state);
extern void BanditFeatures(const BanditParams *bp, const double *context, double *x);
extern void BanditUpdate(const BanditParams *bp, double *state, const double *x,
						 double reward);
extern BanditChoice BanditChoose(const BanditParams *bp, int narms,
								 double *const *states, const double *x,
								 int64 rewards_so_far, uint64 draw_key);

#endif							/* PGMAKER_RL_H */
