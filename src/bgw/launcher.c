/*-------------------------------------------------------------------------
 * src/bgw/launcher.c
 *		The launcher: a background worker, connected to ml.database, that
 *		recovers the jobs a crash interrupted, queues the runs of due
 *		schedules and starts one dynamic worker per queued part of a job,
 *		at most ml.max_workers at once.
 *
 * Every look at the tables is its own transaction.  The launcher sleeps on
 * its latch for ml.naptime, or less when a schedule falls due sooner; a
 * committed ml._queue_job sets the latch (BgwWakeLauncher), and so does the
 * postmaster when a worker the launcher started stops (bgw_notify_pid).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "monitor/monitor.h"

bool		BgwPreloaded = false;

/* What backends need to wake the launcher. */
typedef struct BgwShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
} BgwShared;

static BgwShared *bgw_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* A worker the launcher started, until it stops. */
typedef struct WorkerSlot
{
	int64		job_id;
	int32		part;
	BackgroundWorkerHandle *handle;
} WorkerSlot;

static WorkerSlot slots[ML_MAX_JOB_WORKERS];

/* the alert sender, while it runs */
static BackgroundWorkerHandle *alert_sender = NULL;

/* when this launcher started: a part claimed before has no slot here */
static TimestampTz started_at;

/* A part is started at most this many times (restarts included). */
#define MAX_ATTEMPTS 5

/* ---------- shared memory ---------- */

#if PG_VERSION_NUM >= 150000
static void
bgw_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BgwShared)));
}
#endif

static void
bgw_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bgw_shared = ShmemInitStruct("pgmaker launcher", sizeof(BgwShared), &found);
	if (!found)
	{
		SpinLockInit(&bgw_shared->mutex);
		bgw_shared->launcher_pid = 0;
		bgw_shared->launcher_latch = NULL;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * BgwShmemRegister asks for the launcher's bit of shared memory; only while
 * shared_preload_libraries is processed.
 */
void
BgwShmemRegister(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = bgw_shmem_request;
#else
	RequestAddinShmemSpace(MAXALIGN(sizeof(BgwShared)));
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = bgw_shmem_startup;
}

/*
 * BgwWakeLauncher sets the launcher's latch, if it runs.
 */
void
BgwWakeLauncher(void)
{
	Latch	   *latch;

	if (bgw_shared == NULL)
		return;
	SpinLockAcquire(&bgw_shared->mutex);
	latch = bgw_shared->launcher_latch;
	SpinLockRelease(&bgw_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

static void
launcher_detach(int code, Datum arg)
{
	SpinLockAcquire(&bgw_shared->mutex);
	if (bgw_shared->launcher_pid == MyProcPid)
	{
		bgw_shared->launcher_pid = 0;
		bgw_shared->launcher_latch = NULL;
	}
	SpinLockRelease(&bgw_shared->mutex);
}

/*
 * BgwInit registers the launcher and its shared memory when pgmaker is in
 * shared_preload_libraries; loaded later, there is no launcher.
 */
void
BgwInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	BgwPreloaded = true;
	BgwShmemRegister();
	BgwLauncherRegister();
}

/*
 * BgwLauncherRegister registers the launcher with the postmaster; the
 * postmaster restarts it 10 seconds after it exits.
 */
void
BgwLauncherRegister(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 10;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pgmaker");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "MLLauncherMain");
	snprintf(w.bgw_name, BGW_MAXLEN, "pgmaker launcher");
	snprintf(w.bgw_type, BGW_MAXLEN, "pgmaker launcher");
	RegisterBackgroundWorker(&w);
}

/* ---------- one look at the tables ---------- */

/* true when this database has pgmaker */
static bool
extension_ready(void)
{
	return OidIsValid(get_extension_oid("pgmaker", true));
}

/*
 * A worker that stopped: a part it left running was cut short (the worker
 * crashed or was terminated), and a part it never claimed could not start.
 * A batch prediction's part is queued again from its checkpoint, up to
 * MAX_ATTEMPTS starts; anything else fails.
 */
static void
reap(WorkerSlot *slot)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(slot->job_id), Int32GetDatum(slot->part)};

	BgwRun("UPDATE ml.job_parts p"
		"   SET status = CASE WHEN j.kind = 'batch_predict' AND p.attempts < " CppAsString2(MAX_ATTEMPTS)
		"                     THEN 'queued' ELSE 'failed' END,"
		"       error = CASE WHEN j.kind = 'batch_predict' AND p.attempts < " CppAsString2(MAX_ATTEMPTS)
		"                    THEN p.error"
		"                    WHEN p.status = 'running' THEN 'the job worker exited before the part ended'"
		"                    ELSE 'no job worker could be started' END,"
		"       finished_at = CASE WHEN j.kind = 'batch_predict' AND p.attempts < " CppAsString2(MAX_ATTEMPTS)
		"                          THEN NULL ELSE clock_timestamp() END,"
		"       pid = NULL"
		"  FROM ml.jobs j"
		" WHERE j.id = p.job_id AND p.job_id = $1 AND p.part = $2"
		"   AND (p.status = 'running' OR (p.status = 'queued' AND p.attempts >= " CppAsString2(MAX_ATTEMPTS) "))", 2, types, values, NULL, SPI_OK_UPDATE);
	if (SPI_processed > 0)
		BgwRun("SELECT ml._settle_job($1)", 1, types, values, NULL, SPI_OK_SELECT);
	pfree(slot->handle);
	slot->handle = NULL;
}

static bool
part_has_worker(int64 job_id, int32 part)
{
	for (int i = 0; i < ML_MAX_JOB_WORKERS; i++)
		if (slots[i].handle != NULL && slots[i].job_id == job_id && slots[i].part == part)
			return true;
	return false;
}

/*
 * Starts a worker for a part; false when the postmaster has no free slot
 * (max_worker_processes), which is logged once until one starts again.
 */
static bool
start_worker(WorkerSlot *slot, int64 job_id, int32 part)
{
	static bool warned = false;
	BackgroundWorker w;
	JobWorkerArgs args;
	MemoryContext old;
	bool		ok;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pgmaker");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "MLJobWorkerMain");
	snprintf(w.bgw_name, BGW_MAXLEN, "pgmaker job %lld part %d", (long long) job_id, part);
	snprintf(w.bgw_type, BGW_MAXLEN, "pgmaker job worker");
	w.bgw_notify_pid = MyProcPid;
	args.dboid = MyDatabaseId;
	args.job_id = job_id;
	args.part = part;
	StaticAssertStmt(sizeof(args) <= BGW_EXTRALEN, "job worker arguments too long");
	memcpy(w.bgw_extra, &args, sizeof(args));

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&w, &slot->handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		slot->handle = NULL;
		if (!warned)
			ereport(LOG,
					(errmsg("pgmaker launcher could not start a job worker: no background worker slot is free"),
					 errhint("Raise max_worker_processes; queued jobs wait meanwhile.")));
		warned = true;
		return false;
	}
	warned = false;
	slot->job_id = job_id;
	slot->part = part;
	return true;
}

/*
 * Starts the alert sender (src/http/alerts.c) when a delivery is due and
 * it does not run; it exits once nothing is due.
 */
static void
start_alert_sender_if_due(void)
{
	BackgroundWorker w;
	MemoryContext old;
	pid_t		pid;

	if (alert_sender != NULL)
	{
		if (GetBackgroundWorkerPid(alert_sender, &pid) != BGWH_STOPPED)
			return;
		pfree(alert_sender);
		alert_sender = NULL;
	}
	BgwRun("SELECT 1 FROM ml.alert_deliveries WHERE status = 'pending' AND next_attempt_at <= now() LIMIT 1",
		   0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pgmaker");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "MLAlertSenderMain");
	snprintf(w.bgw_name, BGW_MAXLEN, "pgmaker alert sender");
	snprintf(w.bgw_type, BGW_MAXLEN, "pgmaker alert sender");
	w.bgw_notify_pid = MyProcPid;
	memcpy(w.bgw_extra, &MyDatabaseId, sizeof(Oid));
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&w, &alert_sender))
	{
		alert_sender = NULL;
		ereport(LOG,
				(errmsg("pgmaker launcher could not start the alert sender: no background worker slot is free"),
				 errhint("Raise max_worker_processes; alerts wait meanwhile.")));
	}
	MemoryContextSwitchTo(old);
}

/* Shortens *nap to the milliseconds until the first value of query (epoch ms from now). */
static void
nap_until(const char *query, long *nap)
{
	BgwRun(query, 0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			double		ms = DatumGetFloat8(d);

			if (ms < *nap)
				*nap = ms < 10 ? 10 : (long) ceil(ms);
		}
	}
}

/*
 * One look: reap stopped workers, queue due schedules, start workers for
 * queued parts and the alert sender for due alerts.  Returns the
 * milliseconds to sleep.
 */
static long
launcher_tick(bool *recovered)
{
	long		nap = ml_naptime;
	int			running = 0;
	uint64		captures_upto = 0;

	BgwXactBegin();
	if (!extension_ready())
	{
		BgwXactCommit(true);
		return nap;
	}
	/*
	 * Parts left running by workers that no longer exist: at the first look
	 * those of a restart or crash; later those of workers an earlier
	 * launcher started and that died since (this launcher's own are reaped
	 * below).
	 */
	{
		Oid			types[2] = {TIMESTAMPTZOID, TEXTOID};
		Datum		values[2];

		values[0] = TimestampTzGetDatum(started_at);
		values[1] = CStringGetTextDatum(*recovered ? "the job worker exited before the part ended"
										: "server restarted");
		BgwRun("SELECT ml._recover_jobs($1, $2)", 2, types, values, NULL, SPI_OK_SELECT);
		*recovered = true;
	}

	for (int i = 0; i < ML_MAX_JOB_WORKERS; i++)
	{
		pid_t		pid;

		if (slots[i].handle == NULL)
			continue;
		if (GetBackgroundWorkerPid(slots[i].handle, &pid) == BGWH_STOPPED)
			reap(&slots[i]);
		else
			running++;
	}

	BgwRun("SELECT ml._queue_due_schedules()", 0, NULL, NULL, NULL, SPI_OK_SELECT);

	if (running < ml_max_workers)
	{
		BgwRun("SELECT p.job_id, p.part FROM ml.job_parts p JOIN ml.jobs j ON j.id = p.job_id"
			" WHERE p.status = 'queued' AND j.status IN ('queued', 'running') AND NOT j.cancel_requested"
			" ORDER BY j.id, p.part", 0, NULL, NULL, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			SPITupleTable *tt = SPI_tuptable;
			uint64		n = SPI_processed;

			for (uint64 r = 0; r < n && running < ml_max_workers; r++)
			{
				bool		isnull;
				int64		job_id = DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
				int32		part = DatumGetInt32(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));
				Oid			types[2] = {INT8OID, INT4OID};
				Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(part)};
				int			free_slot = -1;

				if (part_has_worker(job_id, part))
					continue;
				for (int i = 0; i < ML_MAX_JOB_WORKERS && free_slot < 0; i++)
					if (slots[i].handle == NULL)
						free_slot = i;
				if (free_slot < 0 || !start_worker(&slots[free_slot], job_id, part))
					break;
				BgwRun("UPDATE ml.job_parts SET attempts = attempts + 1 WHERE job_id = $1 AND part = $2", 2, types, values, NULL, SPI_OK_UPDATE);
				running++;
			}
		}
	}

	start_alert_sender_if_due();
	(void) CaptureFlush(&captures_upto);

	/* sleep until the next schedule or alert delivery falls due, if sooner than the nap */
	nap_until("SELECT (extract(epoch FROM min(next_run) - now()) * 1000)::float8 FROM ml.schedules WHERE enabled",
			  &nap);
	if (alert_sender == NULL)
		nap_until("SELECT (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::float8"
				  "  FROM ml.alert_deliveries WHERE status = 'pending' AND next_attempt_at > now()", &nap);
	BgwXactCommit(true);
	/* the captures stored are let go only now that they are committed */
	CaptureConsumed(captures_upto);
	return nap;
}

/*
 * MLLauncherMain is the launcher's entry point.  An error in a look is
 * logged and the launcher exits; the postmaster starts it again after
 * bgw_restart_time.
 */
void
MLLauncherMain(Datum arg)
{
	bool		recovered = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(ml_database, NULL, 0);
	/* the bookkeeping resolves no name through a schema others can write */
	SetConfigOption("search_path", BGW_CATALOG_PATH, PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname("pgmaker launcher");
	started_at = GetCurrentTimestamp();

	SpinLockAcquire(&bgw_shared->mutex);
	bgw_shared->launcher_pid = MyProcPid;
	bgw_shared->launcher_latch = MyLatch;
	SpinLockRelease(&bgw_shared->mutex);
	before_shmem_exit(launcher_detach, (Datum) 0);

	ereport(LOG, (errmsg("pgmaker launcher started in database \"%s\"", ml_database)));

	for (;;)
	{
		long		nap;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		nap = launcher_tick(&recovered);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
