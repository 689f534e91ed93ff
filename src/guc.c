/*-------------------------------------------------------------------------
 * src/guc.c
 *		Every ml.* setting, in one place and sorted by name.
 *-------------------------------------------------------------------------
 */
#include "pgmaker.h"
#include "http/http.h"

#include <limits.h>
#include <cblas.h>

#include "miscadmin.h"
#include "utils/guc.h"

int			ml_aggregate_train_min_rows = 100000;
int			ml_capture_buffer = 8192;	/* kB */
char	   *ml_database = NULL;
char	   *ml_http_allow = NULL;
int			ml_http_max_bytes = 1024 * 1024;	/* kB: 1GB */
int			ml_http_timeout = 30000;	/* ms */
int			ml_max_train_memory = 1024 * 1024;	/* kB: 1GB */
int			ml_max_workers = 2;
int			ml_naptime = 5000;	/* ms */
int			ml_threads = 0;

/*
 * GucInit defines the ml.* settings and reserves the prefix.
 */
void
GucInit(void)
{
	DefineCustomIntVariable("ml.aggregate_train_min_rows",
							"Smallest estimated source size at which ml.train fits linear and ridge by one aggregate scan; -1 never.",
							"Such a fit reads its source with a parallel-safe aggregate instead of into memory, and chooses its hold-out rows by a hash of each row's values.  A smaller source whose rows would take more than half of ml.max_train_memory is fitted that way too.",
							&ml_aggregate_train_min_rows,
							100000,
							-1,
							INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* postmaster settings can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("ml.capture_buffer",
								"Size of the shared ring buffer that holds captured predictions until the launcher stores them.",
								"A capture that does not fit is dropped and counted.",
								&ml_capture_buffer,
								8192,
								64,
								1024 * 1024,
								PGC_POSTMASTER,
								GUC_UNIT_KB,
								NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("ml.database",
								   "Database whose jobs and schedules pgmaker's background workers run.",
								   "The launcher connects to it when pgmaker is in shared_preload_libraries; jobs queued in other databases are refused.",
								   &ml_database,
								   "postgres",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   NULL, NULL, NULL);

	DefineCustomStringVariable("ml.http_allow",
							   "URL prefixes that roles other than superusers may fetch, separated by commas.",
							   "Empty: only superusers reach the network.  A prefix naming only a host matches that host exactly.",
							   &ml_http_allow,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ml.http_max_bytes",
							"Largest response body pgmaker downloads in one transfer.",
							"A larger response stops the transfer with an error.",
							&ml_http_max_bytes,
							1024 * 1024,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ml.http_timeout",
							"Longest wait for a connection or for the next bytes of a transfer.",
							"A transfer that stalls longer fails; statement_timeout bounds the whole statement.",
							&ml_http_timeout,
							30000,
							100,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ml.max_train_memory",
							"Largest amount of memory the training data of one ml.train call may use.",
							"Training reads its source into memory; past this limit it stops with an error.",
							&ml_max_train_memory,
							1024 * 1024,
							64,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ml.max_workers",
							"Largest number of job workers pgmaker's launcher runs at once.",
							"Further jobs wait in the queue.  Each worker is one of max_worker_processes.",
							&ml_max_workers,
							2,
							1,
							ML_MAX_JOB_WORKERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ml.naptime",
							"Time between two looks of pgmaker's launcher at ml.jobs and ml.schedules.",
							"A queued job wakes the launcher at once; a schedule falling due before the nap ends shortens it.",
							&ml_naptime,
							5000,
							100,
							3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ml.threads",
							"Number of threads the numeric libraries may use; 0 lets them pick.",
							NULL,
							&ml_threads,
							0,
							0,
							1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("ml");
#else
	EmitWarningsOnPlaceholders("ml");
#endif
}

/*
 * OpenBLAS's pthread build stops its worker threads with this (it exports
 * it for its fork handler); other builds may not have it.
 */
extern int	blas_thread_shutdown_(void) __attribute__((weak));

/* The thread count last set in this process; 0 before the first. */
static int	ml_blas_threads = 0;

/*
 * MLApplyThreadLimit sets OpenBLAS's threads before a computation of about
 * flops operations per library call: one thread for small calls, where
 * waking others costs more than it saves; else ml.threads (0: one per
 * processor).
 *
 * Setting a thread count starts OpenBLAS's worker threads when they are
 * not running, and idle workers spin (sched_yield) for about 0.1 s before
 * they sleep: in a backend or a parallel worker that only wanted one
 * thread, they took a processor from the scan.  So one thread stops the
 * workers, and a count is set only when it changes.
 */
void
MLApplyThreadLimit(double flops)
{
	int			threads = ml_threads > 0 ? ml_threads : openblas_get_num_procs();
	int			want = flops < ML_PARALLEL_MIN_FLOPS ? 1 : threads;

	if (want == ml_blas_threads)
		return;
	openblas_set_num_threads(want);
	if (want == 1 && blas_thread_shutdown_ != NULL)
		blas_thread_shutdown_();
	ml_blas_threads = want;
}
