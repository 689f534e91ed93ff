/*-------------------------------------------------------------------------
 * src/bgw/worker.c
 *		A job worker: claims one part of a job, does it as the job's owner,
 *		and records how it ended.
 *
 * The worker connects as the bootstrap superuser, which only ever runs
 * the fixed bookkeeping statements on ml.jobs and ml.job_parts; everything
 * the job's arguments name (the source query, the output table, ml.train)
 * runs with the owner as current user (BgwAsRole), with the owner's
 * privileges, and cannot switch role back.
 *
 * A training job is one transaction, its result and status committed with
 * the model.  A batch prediction commits each chunk of rows together with
 * its checkpoint (the last key written), so that a part cut short by a
 * crash resumes after its last chunk: every key exactly once.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pgmaker.h"
#include "bgw/bgw.h"

typedef struct Job
{
	int64		id;
	int32		part;
	char	   *kind;
	Oid			owner;
	int64		schedule_id;
	/* a batch prediction */
	char	   *query;
	char	   *into;
	char	   *key;
	char	   *key_type;
	int32		chunk_rows;
	char	   *lo;
	char	   *hi;
	char	   *checkpoint;
	bool		has_total;
	/* a training job */
	char	   *project;
	char	   *source;
	char	   *options;
	/* the owner's search_path when the job was queued */
	char	   *search_path;
} Job;

static MemoryContext job_cxt;

/* Column i (from 1) of the first result row, as text in job_cxt, or NULL. */
static char *
result_text(int i)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i);

	return v ? MemoryContextStrdup(job_cxt, v) : NULL;
}

/* An integer the bookkeeping statements returned as text. */
static int64
text_int64(const char *s)
{
	return DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(s)));
}

static Datum
text_or_null(const char *s, char *nullflag)
{
	*nullflag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* ---------- claiming and finishing ---------- */

/*
 * Marks the part running, if it is still queued and its job neither
 * ended nor is being canceled, and reads the job.
 */
static bool
claim(const JobWorkerArgs *a, Job *job)
{
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3] = {Int64GetDatum(a->job_id), Int32GetDatum(a->part), Int32GetDatum(MyProcPid)};
	bool		claimed;

	BgwXactBegin();
	BgwRun("UPDATE ml.job_parts p SET status = 'running', pid = $3, started_at = coalesce(p.started_at, clock_timestamp()),"
		 "       error = NULL"
		 "  FROM ml.jobs j"
		 " WHERE j.id = p.job_id AND p.job_id = $1 AND p.part = $2 AND p.status = 'queued'"
		 "   AND j.status IN ('queued', 'running') AND NOT j.cancel_requested"
		 " RETURNING j.kind, j.owner::oid, coalesce(j.schedule_id, 0),"
		 "           j.args ->> 'query', j.args ->> 'into', j.args ->> 'key', j.args ->> 'key_type',"
		 "           j.args ->> 'chunk_rows', p.lo, p.hi, p.checkpoint, p.rows_total IS NOT NULL,"
		 "           j.args ->> 'project', j.args ->> 'source', j.args ->> 'options',"
		 "           j.args ->> 'search_path'",
		 3, types, values, NULL, SPI_OK_UPDATE_RETURNING);
	claimed = SPI_processed == 1;
	if (claimed)
	{
		char	   *chunk;

		memset(job, 0, sizeof(*job));
		job->id = a->job_id;
		job->part = a->part;
		job->kind = result_text(1);
		job->owner = (Oid) text_int64(result_text(2));
		job->schedule_id = text_int64(result_text(3));
		job->query = result_text(4);
		job->into = result_text(5);
		job->key = result_text(6);
		job->key_type = result_text(7);
		chunk = result_text(8);
		job->chunk_rows = chunk ? (int32) text_int64(chunk) : 0;
		job->lo = result_text(9);
		job->hi = result_text(10);
		job->checkpoint = result_text(11);
		job->has_total = strcmp(result_text(12), "t") == 0;
		job->project = result_text(13);
		job->source = result_text(14);
		job->options = result_text(15);
		job->search_path = result_text(16);
		if (job->search_path == NULL)
			job->search_path = "\"$user\", public";
		BgwRun("UPDATE ml.jobs SET status = 'running', started_at = coalesce(started_at, clock_timestamp()), pid = $3"
			 " WHERE id = $1 AND status IN ('queued', 'running')",
			 3, types, values, NULL, SPI_OK_UPDATE);
	}
	BgwXactCommit(false);
	return claimed;
}

/*
 * Records the end of the part (in the current transaction): status, and
 * for an error its message, SQLSTATE, detail and hint; then settles the
 * job's status from its parts.
 */
static void
record_end(const Job *job, const char *status, ErrorData *edata)
{
	Oid			types[7] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";

	values[0] = Int64GetDatum(job->id);
	values[1] = Int32GetDatum(job->part);
	values[2] = CStringGetTextDatum(status);
	values[3] = text_or_null(edata ? edata->message : NULL, &nulls[3]);
	values[4] = text_or_null(edata ? unpack_sql_state(edata->sqlerrcode) : NULL, &nulls[4]);
	values[5] = text_or_null(edata ? edata->detail : NULL, &nulls[5]);
	values[6] = text_or_null(edata ? edata->hint : NULL, &nulls[6]);
	BgwRun("UPDATE ml.job_parts SET status = $3, error = $4, finished_at = clock_timestamp(), pid = NULL"
		 " WHERE job_id = $1 AND part = $2",
		 7, types, values, nulls, SPI_OK_UPDATE);
	if (edata != NULL)
		BgwRun("UPDATE ml.jobs SET result = jsonb_strip_nulls(jsonb_build_object("
			 "         'sqlstate', $5, 'detail', $6, 'hint', $7, 'part', $2))"
			 " WHERE id = $1 AND result IS NULL",
			 7, types, values, nulls, SPI_OK_UPDATE);
	BgwRun("SELECT ml._settle_job($1)", 1, types, values, NULL, SPI_OK_SELECT);
}

/* true when the job is being canceled or has failed in another part */
static bool
job_stopping(const Job *job)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job->id)};
	bool		isnull;

	BgwRun("SELECT cancel_requested OR status NOT IN ('queued', 'running') FROM ml.jobs WHERE id = $1",
		 1, types, values, NULL, SPI_OK_SELECT);
	return SPI_processed == 0 ||
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
require_owner(const Job *job)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(job->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that queued job %lld no longer exists", (long long) job->id)));
}

/* ---------- a training job ---------- */

/* ml.train's arguments a job may pass, with their types */
static const struct
{
	const char *name;
	const char *type;
}			train_args[] = {
	{"target", "text"}, {"algorithm", "text"}, {"task", "text"}, {"hyperparams", "jsonb"},
	{"preprocess", "jsonb"}, {"test_size", "float8"}, {"deploy", "text"}, {"gate", "jsonb"},
	{"search", "text"}, {"search_params", "jsonb"},
};

static void run_monitor(Job *job);

static void
run_train(Job *job)
{
	StringInfoData sql;
	Oid			types[2 + lengthof(train_args)];
	Datum		values[2 + lengthof(train_args)];
	char		nulls[2 + lengthof(train_args)];
	int			nargs = 2;
	RoleSwitch	rs;
	char	   *result;
	char	   *model_id;

	BgwXactBegin();
	require_owner(job);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT to_jsonb(r)::text, r.model_id::text FROM ml.train(project => $1, source => $2");
	types[0] = types[1] = TEXTOID;
	values[0] = CStringGetTextDatum(job->project);
	values[1] = CStringGetTextDatum(job->source);
	nulls[0] = nulls[1] = ' ';

	/* the options, checked when the job was queued: only ml.train's arguments */
	if (job->options != NULL)
	{
		Oid			otypes[1] = {TEXTOID};
		Datum		ovalues[1] = {CStringGetTextDatum(job->options)};
		SPITupleTable *tt;

		BgwRun("SELECT key, value FROM jsonb_each_text($1::jsonb)", 1, otypes, ovalues, NULL, SPI_OK_SELECT);
		tt = SPI_tuptable;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			char	   *name = SPI_getvalue(tt->vals[r], tt->tupdesc, 1);
			char	   *value = SPI_getvalue(tt->vals[r], tt->tupdesc, 2);
			int			k;

			for (k = 0; k < lengthof(train_args); k++)
				if (strcmp(train_args[k].name, name) == 0)
					break;
			if (k == lengthof(train_args))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown option \"%s\" of a training job", name)));
			appendStringInfo(&sql, ", %s => $%d::%s", train_args[k].name, nargs + 1, train_args[k].type);
			types[nargs] = TEXTOID;
			values[nargs] = text_or_null(value, &nulls[nargs]);
			nargs++;
		}
	}
	appendStringInfoString(&sql, ") r");

	BgwAsRole(job->owner, job->search_path, &rs);
	BgwRun(sql.data, nargs, types, values, nulls, SPI_OK_SELECT);
	result = SPI_processed == 1 ? result_text(1) : NULL;
	model_id = SPI_processed == 1 ? result_text(2) : NULL;
	BgwRestoreRole(&rs);

	{
		Oid			rtypes[3] = {INT8OID, TEXTOID, TEXTOID};
		Datum		rvalues[3];
		char		rnulls[3] = "   ";

		rvalues[0] = Int64GetDatum(job->id);
		rvalues[1] = text_or_null(result, &rnulls[1]);
		rvalues[2] = text_or_null(model_id, &rnulls[2]);
		BgwRun("UPDATE ml.jobs SET result = $2::jsonb, model_id = $3::bigint, progress = 1 WHERE id = $1",
			 3, rtypes, rvalues, rnulls, SPI_OK_UPDATE);
	}
	record_end(job, "succeeded", NULL);
	BgwXactCommit(false);
}

/* ---------- a monitoring job ---------- */

/*
 * run_monitor runs ml.monitor as the job's owner, with the schedule's
 * thresholds; on a violation with "on_violation": "retrain" it runs the
 * project's (first enabled) retraining schedule now, also as the owner.
 * The monitor itself stores the run and raises the alert.
 */
static void
run_monitor(Job *job)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";
	RoleSwitch	rs;
	char	   *violations;
	char	   *run_id;
	char	   *retrain_job = NULL;
	bool		retrain;

	BgwXactBegin();
	require_owner(job);
	values[0] = CStringGetTextDatum(job->project);
	values[1] = text_or_null(job->source, &nulls[1]);	/* NULL: the captured predictions */
	values[2] = CStringGetTextDatum(job->options ? job->options : "{}");

	BgwAsRole(job->owner, job->search_path, &rs);
	BgwRun("SELECT count(*) FILTER (WHERE m.violated)::text,"
		   "       coalesce($3::jsonb ->> 'on_violation', 'alert') = 'retrain'"
		   "  FROM ml.monitor($1, $2, $3::jsonb - 'on_violation') m",
		   3, types, values, nulls, SPI_OK_SELECT);
	violations = result_text(1);
	retrain = strcmp(result_text(2), "t") == 0;
	/* a later statement sees the run the monitor stored */
	BgwRun("SELECT max(r.id)::text FROM ml.monitor_runs r JOIN ml.projects p ON p.id = r.project_id"
		   " WHERE p.name = $1", 1, types, values, NULL, SPI_OK_SELECT);
	run_id = result_text(1);
	if (retrain && text_int64(violations) > 0)
	{
		BgwRun("SELECT ml.run_schedule(s.id)::text FROM ml.schedules s JOIN ml.projects p ON p.id = s.project_id"
			   " WHERE p.name = $1 AND s.kind = 'retrain' AND s.enabled ORDER BY s.id LIMIT 1",
			   1, types, values, NULL, SPI_OK_SELECT);
		retrain_job = SPI_processed == 1 ? result_text(1) : NULL;
	}
	BgwRestoreRole(&rs);

	{
		Oid			rtypes[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
		Datum		rvalues[4];
		char		rnulls[4] = "    ";

		rvalues[0] = Int64GetDatum(job->id);
		rvalues[1] = CStringGetTextDatum(violations);
		rvalues[2] = text_or_null(run_id, &rnulls[2]);
		rvalues[3] = text_or_null(retrain_job, &rnulls[3]);
		BgwRun("UPDATE ml.jobs SET result = jsonb_build_object('violations', $2::int, 'monitor_run_id', $3::bigint,"
			   "                                      'retrain_job_id', $4::bigint), progress = 1"
			   " WHERE id = $1",
			   4, rtypes, rvalues, rnulls, SPI_OK_UPDATE);
	}
	record_end(job, "succeeded", NULL);
	BgwXactCommit(false);
}

/* ---------- a batch prediction ---------- */

/* The WHERE clause of the rows after lower (if any) up to upper (if any). */
static char *
range_clause(const Job *job, const char *lower, const char *upper)
{
	const char *k = quote_identifier(job->key);

	if (lower && upper)
		return psprintf("WHERE s.%s > $1::%s AND s.%s <= $2::%s", k, job->key_type, k, job->key_type);
	if (lower)
		return psprintf("WHERE s.%s > $1::%s", k, job->key_type);
	if (upper)
		return psprintf("WHERE s.%s <= $2::%s", k, job->key_type);
	return "";
}

static void
run_batch(Job *job)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job->id), Int32GetDatum(job->part)};
	RoleSwitch	rs;
	char	   *model_id;
	bool		classification;
	bool		batched;
	char	   *batch_size;
	bool		log_predictions;
	const char *log_cte = "";
	const char *k = quote_identifier(job->key);

	/* pin the model: the first part to start takes the live one for all */
	BgwXactBegin();
	require_owner(job);
	BgwRun("UPDATE ml.jobs j SET model_id = (SELECT d.model_id FROM ml.deployments d"
		 "                                  WHERE d.project_id = j.project_id ORDER BY d.id DESC LIMIT 1)"
		 " WHERE j.id = $1 AND j.model_id IS NULL",
		 1, types, values, NULL, SPI_OK_UPDATE);
	BgwRun("SELECT j.model_id::text, coalesce(p.task = 'classification', false),"
		 "       coalesce(m.algorithm = 'endpoint', false) OR j.args ->> 'batch_size' IS NOT NULL,"
		 "       coalesce(j.args ->> 'batch_size', '0'),"
		 "       coalesce((j.args ->> 'log_predictions')::boolean, false),"
		 "       m.id IS NOT NULL"
		 "  FROM ml.jobs j LEFT JOIN ml.projects p ON p.id = j.project_id"
		 "  LEFT JOIN ml.models m ON m.id = j.model_id WHERE j.id = $1",
		 1, types, values, NULL, SPI_OK_SELECT);
	model_id = SPI_processed == 1 ? result_text(1) : NULL;
	if (model_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the project of job %lld has no deployed model", (long long) job->id)));
	/* the project, and with it the pinned model, may have been dropped since */
	if (strcmp(result_text(6), "t") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %s of job %lld no longer exists", model_id, (long long) job->id)));
	classification = strcmp(result_text(2), "t") == 0;
	batched = strcmp(result_text(3), "t") == 0;
	/* an integer (checked when queued), kept past this transaction */
	batch_size = MemoryContextStrdup(job_cxt, psprintf(INT64_FORMAT, text_int64(result_text(4))));
	log_predictions = strcmp(result_text(5), "t") == 0;

	if (!job->has_total)
	{
		Oid			ctypes[2] = {TEXTOID, TEXTOID};
		Datum		cvalues[2];
		char		cnulls[2];
		char	   *total;
		Oid			ttypes[3] = {INT8OID, INT4OID, INT8OID};
		Datum		tvalues[3];

		cvalues[0] = text_or_null(job->lo, &cnulls[0]);
		cvalues[1] = text_or_null(job->hi, &cnulls[1]);
		BgwAsRole(job->owner, job->search_path, &rs);
		BgwRun(psprintf("SELECT count(*) FROM (%s) s %s", job->query, range_clause(job, job->lo, job->hi)),
			 2, ctypes, cvalues, cnulls, SPI_OK_SELECT);
		total = result_text(1);
		BgwRestoreRole(&rs);
		tvalues[0] = values[0];
		tvalues[1] = values[1];
		tvalues[2] = Int64GetDatum(text_int64(total));
		BgwRun("UPDATE ml.job_parts SET rows_total = $3 WHERE job_id = $1 AND part = $2",
			 3, ttypes, tvalues, NULL, SPI_OK_UPDATE);
		BgwRun("SELECT ml._settle_job($1)", 1, types, values, NULL, SPI_OK_SELECT);
	}
	BgwXactCommit(false);

	/* keyed predictions also go to ml.prediction_log, for ml.model_quality */
	if (log_predictions && job->project == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job %lld logs its predictions but names no project", (long long) job->id)));
	if (log_predictions)
		log_cte = MemoryContextStrdup(job_cxt, psprintf(", logged AS (INSERT INTO ml.prediction_log (project, key, model_id, inputs, prediction, label)"
						   "   SELECT %s, i.%s::text, %s, to_jsonb(s), i.prediction, i.label"
						   "     FROM ins i JOIN src s ON s.%s = i.%s"
						   "   ON CONFLICT ON CONSTRAINT prediction_log_pkey DO UPDATE"
						   "      SET model_id = EXCLUDED.model_id, inputs = EXCLUDED.inputs,"
						   "          prediction = EXCLUDED.prediction, label = EXCLUDED.label,"
						   "          predicted_at = now(), logged_by = current_user::regrole)",
						   quote_literal_cstr(job->project), k, model_id, k, k));

	for (;;)
	{
		Oid			ctypes[2] = {TEXTOID, TEXTOID};
		Datum		cvalues[2];
		char		cnulls[2];
		const char *lower = job->checkpoint ? job->checkpoint : job->lo;
		char	   *sql;
		int64		n;
		char	   *last;

		CHECK_FOR_INTERRUPTS();
		BgwXactBegin();
		if (job_stopping(job))
		{
			record_end(job, "canceled", NULL);
			BgwXactCommit(false);
			return;
		}
		if (batched)
		{
			/*
			 * A model served by a container (or a job given batch_size):
			 * the chunk's rows go to the model as one array, batch_size
			 * rows per request, instead of one call per row.
			 */
			sql = psprintf("WITH src AS (SELECT s.* FROM (%s) s %s ORDER BY s.%s LIMIT %d),"
						   " b AS (SELECT array_agg(s ORDER BY s.%s) AS r, array_agg(s.%s ORDER BY s.%s) AS keys FROM src s),"
						   " ins AS (INSERT INTO %s (%s, prediction, label, probabilities, model_id, predicted_at)"
						   "         SELECT b.keys[p.ord], p.prediction, %s, %s, %s, now()"
						   "           FROM b, ml._predict_batch(%s::bigint, b.r, %s) p"
						   "          WHERE b.r IS NOT NULL"
						   "         RETURNING %s, prediction, label)%s"
						   " SELECT count(*), max(%s)::text FROM ins",
						   job->query, range_clause(job, lower, job->hi), k, job->chunk_rows,
						   k, k, k,
						   job->into, k,
						   classification ? "p.label" : "NULL",
						   classification ? "p.probabilities" : "NULL",
						   model_id, model_id, batch_size, k, log_cte, k);
		}
		else
			sql = psprintf("WITH src AS (SELECT s.* FROM (%s) s %s ORDER BY s.%s LIMIT %d),"
						   " ins AS (INSERT INTO %s (%s, prediction, label, probabilities, model_id, predicted_at)"
						   "         SELECT s.%s, ml.predict(%s::bigint, s), %s, %s, %s, now() FROM src s"
						   "         RETURNING %s, prediction, label)%s"
						   " SELECT count(*), max(%s)::text FROM ins",
						   job->query, range_clause(job, lower, job->hi), k, job->chunk_rows,
						   job->into, k,
						   k, model_id,
						   classification ? psprintf("ml.predict_label(%s::bigint, s)", model_id) : "NULL",
						   classification ? psprintf("ml.predict_proba(%s::bigint, s)", model_id) : "NULL",
						   model_id, k, log_cte, k);
		cvalues[0] = text_or_null(lower, &cnulls[0]);
		cvalues[1] = text_or_null(job->hi, &cnulls[1]);
		BgwAsRole(job->owner, job->search_path, &rs);
		BgwRun(sql, 2, ctypes, cvalues, cnulls, SPI_OK_SELECT);
		n = text_int64(result_text(1));
		last = result_text(2);
		BgwRestoreRole(&rs);

		if (n > 0)
		{
			Oid			utypes[4] = {INT8OID, INT4OID, TEXTOID, INT8OID};
			Datum		uvalues[4] = {values[0], values[1], CStringGetTextDatum(last), Int64GetDatum(n)};

			BgwRun("UPDATE ml.job_parts SET checkpoint = $3, rows_done = rows_done + $4"
				 " WHERE job_id = $1 AND part = $2",
				 4, utypes, uvalues, NULL, SPI_OK_UPDATE);
			BgwRun("SELECT ml._settle_job($1)", 1, types, values, NULL, SPI_OK_SELECT);
			job->checkpoint = last;
		}
		if (n < job->chunk_rows)
		{
			record_end(job, "succeeded", NULL);
			BgwXactCommit(false);
			return;
		}
		BgwXactCommit(false);
	}
}

/* ---------- the entry point ---------- */

/*
 * MLJobWorkerMain runs one part of a job.  An ERROR ends the part as
 * failed (or canceled, when the job's owner canceled it) with the error
 * recorded; a FATAL or a crash leaves the part running for the launcher to
 * find.
 */
void
MLJobWorkerMain(Datum arg)
{
	JobWorkerArgs a;
	Job			job;

	memcpy(&a, MyBgworkerEntry->bgw_extra, sizeof(a));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(a.dboid, InvalidOid, 0);
	/* the bookkeeping resolves no name through a schema others can write */
	SetConfigOption("search_path", BGW_CATALOG_PATH, PGC_SUSET, PGC_S_SESSION);

	job_cxt = AllocSetContextCreate(TopMemoryContext, "pgmaker job", ALLOCSET_DEFAULT_SIZES);
	pgstat_report_appname(psprintf("pgmaker job %lld", (long long) a.job_id));
	if (!claim(&a, &job))
		proc_exit(0);

	PG_TRY();
	{
		if (strcmp(job.kind, "batch_predict") == 0)
			run_batch(&job);
		else if (strcmp(job.kind, "monitor") == 0)
			run_monitor(&job);
		else
			run_train(&job);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		canceled;

		/* a second cancel must not interrupt the recording of the first */
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(job_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* also resets the role and the settings the job changed */
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("pgmaker job %lld part %d ended with an error: %s",
						(long long) job.id, job.part, edata->message)));

		BgwXactBegin();
		canceled = edata->sqlerrcode == ERRCODE_QUERY_CANCELED && job_stopping(&job);
		record_end(&job, canceled ? "canceled" : "failed", canceled ? NULL : edata);
		BgwXactCommit(false);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	proc_exit(0);
}
