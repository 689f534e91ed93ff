/*-------------------------------------------------------------------------
 * src/algo/lbfgs.c
 *		Limited-memory BFGS for smooth unconstrained minimisation.
 *
 * The two-loop recursion over the last LBFGS_MEMORY correction pairs, with
 * a backtracking line search on the Armijo condition; a pair that breaks
 * the curvature condition is not stored.  Stops when the largest gradient
 * component is at most gtol or the objective stops decreasing in relative
 * terms (both count as converged), or when the line search finds no
 * decrease or max_iter iterations have run (neither does).  The objective may check
 * for interrupts: this is plain C with no library frames to unwind.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>

#define LBFGS_MEMORY 10
#define LBFGS_FTOL 1e-14		/* relative decrease below which we stop */
#define LBFGS_ARMIJO 1e-4
#define LBFGS_MAX_BACKTRACK 40

static double
max_abs(const double *v, int n)
{
	double		m = 0.0;

	for (int i = 0; i < n; i++)
		m = Max(m, fabs(v[i]));
	return m;
}

/*
 * LbfgsMinimize minimises eval from the start point x (updated in place);
 * progress (may be NULL) hears of every iteration's objective and largest
 * gradient component.
 */
LbfgsResult
LbfgsMinimize(int n, double *x, LbfgsEval eval, void *arg, int max_iter,
			  double gtol, LbfgsProgress progress)
{
	double	   *g = palloc(sizeof(double) * n);
	double	   *d = palloc(sizeof(double) * n);
	double	   *xnew = palloc(sizeof(double) * n);
	double	   *gnew = palloc(sizeof(double) * n);
	double	   *s = palloc(sizeof(double) * n * LBFGS_MEMORY);
	double	   *y = palloc(sizeof(double) * n * LBFGS_MEMORY);
	double		rho[LBFGS_MEMORY];
	double		alpha[LBFGS_MEMORY];
	int			stored = 0;
	int			head = 0;		/* next slot to write */
	LbfgsResult res = {0};
	bool		stalled = false;	/* the objective stopped decreasing */
	double		f = eval(arg, x, g);

	res.gnorm = max_abs(g, n);
	while (res.gnorm > gtol && res.iterations < max_iter)
	{
		double		step = 1.0;
		double		slope;
		double		fnew = 0.0;
		int			bt;

		/* d = -H g by the two-loop recursion */
		for (int i = 0; i < n; i++)
			d[i] = -g[i];
		for (int k = 0; k < stored; k++)
		{
			int			slot = (head - 1 - k + LBFGS_MEMORY) % LBFGS_MEMORY;

			alpha[slot] = rho[slot] * cblas_ddot(n, s + slot * n, 1, d, 1);
			cblas_daxpy(n, -alpha[slot], y + slot * n, 1, d, 1);
		}
		if (stored > 0)
		{
			int			last = (head - 1 + LBFGS_MEMORY) % LBFGS_MEMORY;
			double		yy = cblas_ddot(n, y + last * n, 1, y + last * n, 1);

			cblas_dscal(n, 1.0 / (rho[last] * yy), d, 1);
		}
		else
		{
			double		gn = cblas_dnrm2(n, g, 1);

			if (gn > 1.0)
				cblas_dscal(n, 1.0 / gn, d, 1);
		}
		for (int k = stored - 1; k >= 0; k--)
		{
			int			slot = (head - 1 - k + LBFGS_MEMORY) % LBFGS_MEMORY;
			double		beta = rho[slot] * cblas_ddot(n, y + slot * n, 1, d, 1);

			cblas_daxpy(n, alpha[slot] - beta, s + slot * n, 1, d, 1);
		}

		slope = cblas_ddot(n, g, 1, d, 1);
		if (slope >= 0)
		{
			/* not a descent direction: restart from steepest descent */
			for (int i = 0; i < n; i++)
				d[i] = -g[i];
			slope = -cblas_ddot(n, g, 1, g, 1);
			stored = 0;
		}

		for (bt = 0; bt < LBFGS_MAX_BACKTRACK; bt++)
		{
			for (int i = 0; i < n; i++)
				xnew[i] = x[i] + step * d[i];
			fnew = eval(arg, xnew, gnew);
			if (isfinite(fnew) && fnew <= f + LBFGS_ARMIJO * step * slope)
				break;
			step *= 0.5;
		}
		res.iterations++;
		if (bt == LBFGS_MAX_BACKTRACK)
		{
			res.search_failed = true;	/* no progress possible along d */
			break;
		}

		/* store the correction pair when it keeps H positive definite */
		{
			double	   *sk = s + head * n;
			double	   *yk = y + head * n;
			double		sy;

			for (int i = 0; i < n; i++)
			{
				sk[i] = xnew[i] - x[i];
				yk[i] = gnew[i] - g[i];
			}
			sy = cblas_ddot(n, sk, 1, yk, 1);
			if (sy > 1e-12 * cblas_ddot(n, yk, 1, yk, 1))
			{
				rho[head] = 1.0 / sy;
				head = (head + 1) % LBFGS_MEMORY;
				stored = Min(stored + 1, LBFGS_MEMORY);
			}
		}

		memcpy(x, xnew, sizeof(double) * n);
		memcpy(g, gnew, sizeof(double) * n);
		res.gnorm = max_abs(g, n);
		if (progress && !progress(arg, res.iterations, fnew, res.gnorm))
		{
			/* a debugger rule ends the run here, at the current point */
			f = fnew;
			res.stopped = true;
			break;
		}
		if (f - fnew <= LBFGS_FTOL * Max(Max(fabs(f), fabs(fnew)), 1.0))
		{
			f = fnew;
			stalled = true;
			break;
		}
		f = fnew;
	}
	res.f = f;
	/* a failed line search is not convergence; a stalled objective is */
	res.converged = res.gnorm <= gtol || stalled;
	pfree(g);
	pfree(d);
	pfree(xnew);
	pfree(gnew);
	pfree(s);
	pfree(y);
	return res;
}
