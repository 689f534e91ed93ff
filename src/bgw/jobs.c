/*-------------------------------------------------------------------------
 * src/bgw/jobs.c
 *		The SQL side of jobs: queue, cancel, schedule, and the checks that
 *		a worker will run them.
 *
 * ml.jobs, ml.job_parts and ml.schedules grant no writes to PUBLIC.  The
 * functions here check the caller (a job or schedule belongs to the role
 * that creates it; only its members cancel or remove it) and then write as
 * the extension's owner.  Waking the launcher and signalling the workers
 * of a canceled job wait for the commit, so that they see the change.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "catalog/catalog.h"
#include "data/data.h"

PG_FUNCTION_INFO_V1(ml_source_query);
PG_FUNCTION_INFO_V1(ml_column_type);
PG_FUNCTION_INFO_V1(ml_require_workers);
PG_FUNCTION_INFO_V1(ml_queue_job);
PG_FUNCTION_INFO_V1(ml_cancel_job);
PG_FUNCTION_INFO_V1(ml_add_schedule);
PG_FUNCTION_INFO_V1(ml_unschedule);
PG_FUNCTION_INFO_V1(ml_run_schedule);

/* ---------- acting as another role ---------- */

/*
 * BgwAsRole makes role the current user until BgwRestoreRole, with
 * search_path set to the given one, in a security-restricted context that
 * forbids SET ROLE, SET SESSION AUTHORIZATION and temporary objects; the
 * settings changed meanwhile are undone by BgwRestoreRole.  An error rolls
 * both back with the transaction.
 */
void
BgwAsRole(Oid role, const char *search_path, RoleSwitch *rs)
{
	GetUserIdAndSecContext(&rs->save_uid, &rs->save_ctx);
	SetUserIdAndSecContext(role, rs->save_ctx | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	rs->guc_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
BgwRestoreRole(const RoleSwitch *rs)
{
	AtEOXact_GUC(false, rs->guc_nest);
	SetUserIdAndSecContext(rs->save_uid, rs->save_ctx);
}

/* ---------- the transactions of the launcher and the job workers ---------- */

/* BgwXactBegin starts a transaction with SPI and a snapshot. */
void
BgwXactBegin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

/*
 * BgwXactCommit commits it and reports the statistics (at once when
 * force_stats) and the process idle.
 */
void
BgwXactCommit(bool force_stats)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(force_stats);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * BgwRun runs one bookkeeping statement of a background process, shown as
 * its activity; another result than expected cannot happen.
 */
void
BgwRun(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	int			rc;

	pgstat_report_activity(STATE_RUNNING, sql);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "pgmaker background worker: statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
}

/* BgwExtensionOwner is the owner of the extension, who owns its tables. */
Oid
BgwExtensionOwner(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'pgmaker'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "extension pgmaker is not installed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetObjectId(d);
}

static void
exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "statement failed (%s): %s", SPI_result_code_string(rc), sql);
}

/* ---------- after commit: wake the launcher, cancel workers ---------- */

/*
 * What to do when the transaction commits, each entry with the
 * subtransaction that asked for it: a rolled-back savepoint drops its own.
 */
typedef struct PendingAction
{
	SubTransactionId subid;
	bool		wake;
	pid_t		cancel_pid;
} PendingAction;

static PendingAction pending[ML_MAX_JOB_WORKERS * 4];
static int	npending = 0;
static bool callbacks_registered = false;

static void
jobs_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			{
				bool		wake = false;

				for (int i = 0; i < npending; i++)
				{
					/* only a job worker, which the pid still is */
					if (pending[i].cancel_pid > 0 && BackendPidGetProc(pending[i].cancel_pid) != NULL)
						(void) kill(pending[i].cancel_pid, SIGINT);
					wake |= pending[i].wake;
				}
				if (wake)
					BgwWakeLauncher();
				npending = 0;
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's jobs wait for the launcher's nap */
			npending = 0;
			break;
		default:
			break;
	}
}

static void
jobs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			keep = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (int i = 0; i < npending; i++)
	{
		if (pending[i].subid == mySubid)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;
			pending[i].subid = parentSubid;
		}
		pending[keep++] = pending[i];
	}
	npending = keep;
}

static void
at_commit(bool wake, pid_t cancel_pid)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(jobs_xact_callback, NULL);
		RegisterSubXactCallback(jobs_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (npending == lengthof(pending))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many jobs queued or canceled in one transaction"),
				 errhint("Commit every %d jobs.", (int) lengthof(pending))));
	pending[npending].subid = GetCurrentSubTransactionId();
	pending[npending].wake = wake;
	pending[npending].cancel_pid = cancel_pid;
	npending++;
}

/*
 * BgwWakeLauncherAtCommit wakes the launcher when the transaction commits
 * (once, however often it is asked).
 */
void
BgwWakeLauncherAtCommit(void)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	for (int i = 0; i < npending; i++)
		if (pending[i].wake && pending[i].subid == subid)
			return;
	at_commit(true, 0);
}

/* ---------- checks ---------- */

Datum
ml_source_query(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ReaderSourceQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * ml._column_type(query, col) is the type of a column of the query's
 * result, which must be a query that only reads.
 */
Datum
ml_column_type(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *col = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	Oid			type;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ps = SourcePrepare(query, &plan);
	type = TupleDescAttr(ps->resultDesc, SourceFindColumn(ps->resultDesc, col, "key"))->atttypid;
	SPI_finish();
	PG_RETURN_OID(type);
}

/*
 * ml._require_workers() raises an error unless the launcher serves this
 * database: pgmaker must be preloaded and ml.database name it.
 */
Datum
ml_require_workers(PG_FUNCTION_ARGS)
{
	char	   *db;

	if (!BgwPreloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgmaker's background workers are not running"),
				 errdetail("Jobs are run by background workers, which start only when pgmaker is preloaded."),
				 errhint("Add pgmaker to shared_preload_libraries in postgresql.conf and restart the server.")));
	db = get_database_name(MyDatabaseId);
	if (ml_database == NULL || strcmp(db, ml_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgmaker's background workers run the jobs of database \"%s\", not of \"%s\"",
						ml_database ? ml_database : "", db),
				 errhint("Queue the job in database \"%s\", or set ml.database to \"%s\" and restart the server.",
						 ml_database ? ml_database : "", db)));
	PG_RETURN_VOID();
}

/* ---------- queue ---------- */

/*
 * ml._queue_job(kind, project_id, schedule_id, args, bounds) inserts a job
 * owned by the current user, with one part per range between the sorted
 * bounds, and wakes the launcher at commit.
 */
Datum
ml_queue_job(PG_FUNCTION_ARGS)
{
	Oid			owner = GetUserId();
	Oid			types[6] = {TEXTOID, INT8OID, INT8OID, JSONBOID, OIDOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	Oid			ptypes[2] = {INT8OID, TEXTARRAYOID};
	Datum		pvalues[2];
	char		pnulls[2] = "  ";
	RoleSwitch	rs;
	bool		isnull;
	int64		id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind and args of a job must not be NULL")));
	/* a schedule's runs are queued by the launcher or ml.run_schedule */
	if (!PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a job queued by a role belongs to no schedule"),
				 errhint("Use ml.run_schedule to run a schedule now.")));
	DirectFunctionCall1(ml_require_workers, (Datum) 0);
	for (int i = 0; i < 4; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	values[4] = ObjectIdGetDatum(owner);
	/* the job resolves names as its owner did when queueing it */
	values[5] = CStringGetTextDatum(GetConfigOption("search_path", false, false));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	exec("INSERT INTO ml.jobs (kind, project_id, schedule_id, args, owner)"
		 " VALUES ($1, $2, $3, $4 || jsonb_build_object('search_path', $6), $5::regrole) RETURNING id",
		 6, types, values, nulls, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	pvalues[0] = Int64GetDatum(id);
	pnulls[1] = PG_ARGISNULL(4) ? 'n' : ' ';
	pvalues[1] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	exec("INSERT INTO ml.job_parts (job_id, part, lo, hi)"
		 " SELECT $1, i - 1, $2[i - 1], $2[i]"
		 "   FROM generate_series(1, coalesce(cardinality($2), 0) + 1) i",
		 2, ptypes, pvalues, pnulls, SPI_OK_INSERT);
	BgwRestoreRole(&rs);
	SPI_finish();
	at_commit(true, 0);
	PG_RETURN_INT64(id);
}

/*
 * Locks a job's or a schedule's row (sql selects its owner FOR UPDATE) and
 * checks that the caller is a member of its owner or of ml_admin; what and verb name the
 * object and the action in messages.  Leaves the row in SPI_tuptable.
 */
static void
lock_owned(const char *sql, int64 id, Oid caller, const char *what, const char *verb)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	bool		isnull;
	Oid			owner;

	exec(sql, 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s %lld does not exist", what, (long long) id)));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!CatalogOwns(caller, owner))
	{
		char	   *name = GetUserNameFromId(owner, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of role \"%s\" to %s %s %lld",
						name ? name : "?", verb, what, (long long) id)));
	}
}

/*
 * ml.cancel_job(id): a queued job ends canceled at once; a running one is
 * marked, its queued parts canceled, and its workers get a query cancel at
 * commit, upon which each records its part canceled.  False when the job
 * had already ended.
 */
Datum
ml_cancel_job(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	Oid			caller = GetUserId();
	RoleSwitch	rs;
	bool		isnull;
	char	   *status;
	bool		result = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	lock_owned("SELECT owner::oid, status FROM ml.jobs WHERE id = $1 FOR UPDATE", id, caller, "job", "cancel");
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)
	{
		exec("UPDATE ml.jobs SET cancel_requested = true WHERE id = $1", 1, types, values, NULL, SPI_OK_UPDATE);
		exec("UPDATE ml.job_parts SET status = 'canceled', finished_at = clock_timestamp() WHERE job_id = $1 AND status = 'queued'",
			 1, types, values, NULL, SPI_OK_UPDATE);
		exec("SELECT p.pid FROM ml.job_parts p WHERE p.job_id = $1 AND p.status = 'running'"
			 "   AND p.pid IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a"
			 "                  WHERE a.backend_type = 'pgmaker job worker')",
			 1, types, values, NULL, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
			at_commit(false, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)));
		exec("SELECT ml._settle_job($1)", 1, types, values, NULL, SPI_OK_SELECT);
		result = true;
	}
	BgwRestoreRole(&rs);
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/* ---------- schedules ---------- */

/*
 * ml._add_schedule(project_id, every, source, options, kind): a schedule owned
 * by the current user, first due one interval from now.
 */
Datum
ml_add_schedule(PG_FUNCTION_ARGS)
{
	Oid			types[7] = {INT8OID, INTERVALOID, TEXTOID, JSONBOID, OIDOID, TEXTOID, TEXTOID};
	Datum		values[7];
	Oid			caller = GetUserId();
	RoleSwitch	rs;
	bool		isnull;
	int64		id;
	ProjectInfo project;

	char		nulls[7] = "       ";

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i) && i != 2)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of a schedule must not be NULL")));
	DirectFunctionCall1(ml_require_workers, (Datum) 0);
	for (int i = 0; i < 4; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	values[4] = ObjectIdGetDatum(caller);
	values[5] = CStringGetTextDatum(GetConfigOption("search_path", false, false));
	values[6] = PG_GETARG_DATUM(4);

	/*
	 * A retraining schedule promotes what passes the gate: it needs the
	 * deploy level; monitoring is for the project's owners.
	 */
	CatalogProjectById(DatumGetInt64(values[0]), &project);
	CatalogCheckAccess(&project, strcmp(text_to_cstring(PG_GETARG_TEXT_PP(4)), "monitor") == 0 ?
					   ML_ACCESS_OWN : ML_ACCESS_DEPLOY);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	exec("INSERT INTO ml.schedules (project_id, every, source, options, owner, search_path, kind, next_run)"
		 " VALUES ($1, $2, $3, $4, $5::regrole, $6, $7, now() + $2) RETURNING id",
		 7, types, values, nulls, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	BgwRestoreRole(&rs);
	SPI_finish();
	/* the launcher shortens its nap to the new schedule */
	at_commit(true, 0);
	PG_RETURN_INT64(id);
}

Datum
ml_unschedule(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	Oid			caller = GetUserId();
	RoleSwitch	rs;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	lock_owned("SELECT owner::oid FROM ml.schedules WHERE id = $1 FOR UPDATE", id, caller, "schedule", "remove");
	exec("DELETE FROM ml.schedules WHERE id = $1", 1, types, values, NULL, SPI_OK_DELETE);
	BgwRestoreRole(&rs);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * ml.run_schedule(id) queues a run of a schedule now, as its owner; its
 * next run stays when it was.
 */
Datum
ml_run_schedule(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	Oid			caller = GetUserId();
	RoleSwitch	rs;
	bool		isnull;
	int64		job_id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	lock_owned("SELECT owner::oid FROM ml.schedules WHERE id = $1 FOR UPDATE", id, caller, "schedule", "run");
	exec("SELECT ml._queue_schedule_run($1)", 1, types, values, NULL, SPI_OK_SELECT);
	job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	BgwRestoreRole(&rs);
	SPI_finish();
	at_commit(true, 0);
	PG_RETURN_INT64(job_id);
}
