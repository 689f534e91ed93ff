/*-------------------------------------------------------------------------
 * src/http/alerts.c
 *		Alert webhooks: the SQL entry points that need C, and the alert
 *		sender, a background worker that posts pending deliveries.
 *
 * Design.  ml._raise_alert (alerts.sql) records an alert, one delivery
 * row per channel, sends NOTIFY ml_alerts, and wakes the launcher at
 * commit; the launcher starts one alert sender while deliveries are due.
 * The sender takes one due delivery at a time (FOR UPDATE SKIP LOCKED),
 * posts the alert's JSON to the channel's URL with the channel owner's
 * network rights (ml.http_allow is checked for the owner, not for the
 * superuser the worker connects as), and records the outcome in the same
 * transaction: delivered on a 2xx answer; otherwise attempted again after
 * 2, 4, 8 and 16 seconds, and failed after the fifth attempt.  The post
 * runs in a subtransaction so that its error is recorded, not raised.  It
 * exits when nothing is due; the launcher starts it again when needed.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "http/http.h"

PG_FUNCTION_INFO_V1(ml_check_url);
PG_FUNCTION_INFO_V1(ml_wake_launcher_at_commit);
PG_FUNCTION_INFO_V1(ml_test_alert_channel);

#define ALERT_MAX_ATTEMPTS 5

/* ml._check_url(url): an error unless the current role may fetch url. */
Datum
ml_check_url(PG_FUNCTION_ARGS)
{
	HttpCheckAllowed(text_to_cstring(PG_GETARG_TEXT_PP(0)), InvalidOid);
	PG_RETURN_VOID();
}

/* ml._wake_launcher_at_commit() */
Datum
ml_wake_launcher_at_commit(PG_FUNCTION_ARGS)
{
	BgwWakeLauncherAtCommit();
	PG_RETURN_VOID();
}

/*
 * ml_test_alert_channel is ml.test_alert_channel(name): the channel is
 * looked up with the caller's rights (row-level security shows only the
 * channels of roles it is a member of); the alert is then written as the
 * extension's owner, since roles write no alerts themselves.
 */
Datum
ml_test_alert_channel(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	Oid			owner;
	RoleSwitch	rs;
	bool		isnull;
	int64		alert_id;
	char	   *caller = GetUserNameFromId(GetUserId(), false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.owner::oid FROM ml.alert_channels c WHERE c.name = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read ml.alert_channels");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("alert channel \"%s\" does not exist", name)));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	{
		Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
		Datum		args[3] = {ObjectIdGetDatum(owner), CStringGetTextDatum(name),
		CStringGetTextDatum(caller)};

		if (SPI_execute_with_args("SELECT ml._raise_alert('test', 'info', NULL, $1::regrole,"
								  " format('test alert for channel %s', $2),"
								  " jsonb_build_object('channel', $2, 'requested_by', $3), $2)",
								  3, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not raise the test alert");
		alert_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	BgwRestoreRole(&rs);
	SPI_finish();
	PG_RETURN_INT64(alert_id);
}

/* ---------- the alert sender ---------- */

typedef struct Delivery
{
	int64		alert_id;
	char	   *channel;
	char	   *url;
	Jsonb	   *headers;
	Oid			owner;
	char	   *payload;
	int			attempts;
} Delivery;

/* Takes one due delivery, locked; false when none is due. */
static bool
take_delivery(Delivery *d)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	BgwRun("SELECT d.alert_id, d.channel, c.url, c.headers, c.owner::oid,"
		   "       ml._alert_payload(d.alert_id)::text, d.attempts"
		   "  FROM ml.alert_deliveries d JOIN ml.alert_channels c ON c.name = d.channel"
		   " WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
		   " ORDER BY d.next_attempt_at, d.alert_id"
		   " LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
		   0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d->alert_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	d->channel = SPI_getvalue(tup, desc, 2);
	d->url = SPI_getvalue(tup, desc, 3);
	d->headers = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
	d->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 5, &isnull));
	d->payload = SPI_getvalue(tup, desc, 6);
	d->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	return true;
}

static void
add_header(const char *key, JsonbValue *v, void *arg)
{
	List	  **headers = (List **) arg;
	char	   *value = JsonbValueToCString(v);

	/* the channel's checks keep line breaks out; a changed row is checked here */
	if (value == NULL || strpbrk(key, "\r\n:") || strpbrk(value, "\r\n"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid header \"%s\" in the alert channel", key)));
	*headers = lappend(*headers, psprintf("%s: %s", key, value));
}

/*
 * post posts the alert; returns the HTTP status, or 0 with *error set
 * when the request could not be made (or was refused by the rules).
 */
static long
post(Delivery *d, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	long		status = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		HttpRequest req;
		List	   *headers = list_make1("Content-Type: application/json");

		JsonbForEachKey(d->headers, "headers", add_header, &headers);
		memset(&req, 0, sizeof(req));
		req.url = d->url;
		req.method = "POST";
		req.headers = headers;
		req.body = d->payload;
		req.body_len = strlen(d->payload);
		req.as_role = d->owner;
		(void) HttpFetch(&req, &status, false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* a cancel or shutdown is not the webhook's failure */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		*error = edata->message;
		status = 0;
	}
	PG_END_TRY();
	return status;
}

static void
record_outcome(Delivery *d, long status, const char *error)
{
	Oid			types[5] = {INT8OID, TEXTOID, INT4OID, TEXTOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		delivered = status >= 200 && status < 300;

	values[0] = Int64GetDatum(d->alert_id);
	values[1] = CStringGetTextDatum(d->channel);
	values[2] = Int32GetDatum((int32) status);
	if (status == 0)
		nulls[2] = 'n';
	if (delivered)
		nulls[3] = 'n';
	else
		values[3] = CStringGetTextDatum(error ? error : psprintf("HTTP status %ld", status));
	values[4] = BoolGetDatum(delivered);

	BgwRun("UPDATE ml.alert_deliveries"
		   "   SET attempts = attempts + 1, last_attempt_at = clock_timestamp(),"
		   "       http_status = $3, last_error = $4,"
		   "       status = CASE WHEN $5 THEN 'delivered'"
		   "                     WHEN attempts + 1 >= " CppAsString2(ALERT_MAX_ATTEMPTS) " THEN 'failed'"
		   "                     ELSE 'pending' END,"
		   "       delivered_at = CASE WHEN $5 THEN clock_timestamp() END,"
		   "       next_attempt_at = CASE WHEN $5 THEN next_attempt_at"
		   "                              ELSE clock_timestamp() + interval '1 second' * power(2, attempts + 1) END"
		   " WHERE alert_id = $1 AND channel = $2",
		   5, types, values, nulls, SPI_OK_UPDATE);
}

/*
 * MLAlertSenderMain is the alert sender's entry point: it posts every due
 * delivery, one transaction each, and exits when none is left.
 */
void
MLAlertSenderMain(Datum arg)
{
	Oid			dboid;
	MemoryContext cxt;

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(dboid));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("search_path", BGW_CATALOG_PATH, PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname("pgmaker alert sender");
	cxt = AllocSetContextCreate(TopMemoryContext, "pgmaker alert", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		Delivery	d;
		char	   *error = NULL;
		long		status;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(cxt);
		BgwXactBegin();
		MemoryContextSwitchTo(cxt);
		if (!take_delivery(&d))
		{
			BgwXactCommit(true);
			break;
		}
		pgstat_report_activity(STATE_RUNNING, "posting an alert");
		status = post(&d, &error);
		record_outcome(&d, status, error);
		if (status < 200 || status >= 300)
			ereport(LOG,
					(errmsg("pgmaker could not deliver alert %lld to channel \"%s\": %s",
							(long long) d.alert_id, d.channel,
							error ? error : psprintf("HTTP status %ld", status))));
		BgwXactCommit(true);
	}
	proc_exit(0);
}
