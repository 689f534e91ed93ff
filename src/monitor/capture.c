/*-------------------------------------------------------------------------
 * src/monitor/capture.c
 *		Prediction capture: a sampled fraction of ml.predict calls, kept in
 *		a ring buffer in shared memory and written to ml.captured by the
 *		launcher.
 *
 * Design.  ml.predict stays STABLE and PARALLEL SAFE and writes no table:
 * a captured call appends one entry (model, time, output, the input as
 * JSON text) to the ring under an LWLock; when the entry does not fit,
 * it is dropped and counted.  The launcher drains the ring at every look
 * (and is woken when the ring is a quarter full) and inserts the entries in one
 * statement.  Entries are never split: the ring holds whole entries
 * between its read and write positions, which only grow.
 *
 * The ring exists only when pgmaker is preloaded (ml.capture_buffer sets
 * its size); otherwise captures are not taken and ml.set_capture refuses.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "catalog/catalog.h"
#include "monitor/monitor.h"

PG_FUNCTION_INFO_V1(ml_set_capture);
PG_FUNCTION_INFO_V1(ml_capture_counters);

/* An entry is at most this big (and at most a quarter of the ring). */
#define CAPTURE_MAX_ENTRY (64 * 1024)

typedef struct CaptureHeader
{
	uint32		len;			/* of the whole entry */
	Oid			dboid;			/* the database of the prediction */
	int64		model_id;
	TimestampTz at;
	double		output;
	/* then the input's JSON text, not terminated */
} CaptureHeader;

typedef struct CaptureRing
{
	LWLock	   *lock;
	uint64		captured;		/* entries written since the server started */
	uint64		dropped;		/* entries that did not fit */
	uint64		written;		/* byte positions: write and read */
	uint64		read;
	Size		size;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} CaptureRing;

static CaptureRing *ring = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
ring_size(void)
{
	return add_size(offsetof(CaptureRing, data), (Size) ml_capture_buffer * 1024);
}

#if PG_VERSION_NUM >= 150000
static void
capture_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ring_size());
	RequestNamedLWLockTranche("pgmaker capture", 1);
}
#endif

static void
capture_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ring = ShmemInitStruct("pgmaker capture", ring_size(), &found);
	if (!found)
	{
		ring->lock = &(GetNamedLWLockTranche("pgmaker capture"))->lock;
		ring->captured = ring->dropped = ring->written = ring->read = 0;
		ring->size = (Size) ml_capture_buffer * 1024;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * CaptureInit asks for the ring when pgmaker is preloaded (after the
 * settings are defined).
 */
void
CaptureInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = capture_shmem_request;
#else
	RequestAddinShmemSpace(ring_size());
	RequestNamedLWLockTranche("pgmaker capture", 1);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = capture_shmem_startup;
}

bool
CaptureAvailable(void)
{
	return ring != NULL;
}

/* Copies n bytes into the ring at byte position pos (wrapping). */
static void
ring_put(uint64 pos, const void *src, Size n)
{
	Size		at = pos % ring->size;
	Size		first = Min(n, ring->size - at);

	memcpy(ring->data + at, src, first);
	if (first < n)
		memcpy(ring->data, (const char *) src + first, n - first);
}

static void
ring_get(uint64 pos, void *dst, Size n)
{
	Size		at = pos % ring->size;
	Size		first = Min(n, ring->size - at);

	memcpy(dst, ring->data + at, first);
	if (first < n)
		memcpy((char *) dst + first, ring->data, n - first);
}

void
CaptureWrite(int64 model_id, double output, const char *json, Size len)
{
	CaptureHeader h;
	bool		wake;

	if (ring == NULL)
		return;
	h.len = (uint32) (sizeof(h) + len);
	h.dboid = MyDatabaseId;
	h.model_id = model_id;
	h.at = GetCurrentTimestamp();
	h.output = output;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (sizeof(h) + len > Min((Size) CAPTURE_MAX_ENTRY, ring->size / 4) ||
		ring->size - (ring->written - ring->read) < h.len)
	{
		ring->dropped++;
		LWLockRelease(ring->lock);
		return;
	}
	ring_put(ring->written, &h, sizeof(h));
	ring_put(ring->written + sizeof(h), json, len);
	ring->written += h.len;
	ring->captured++;
	wake = (ring->written - ring->read) > ring->size / 4;
	LWLockRelease(ring->lock);
	if (wake)
		BgwWakeLauncher();
}

/*
 * CaptureFlush moves the ring's entries into ml.captured (the caller is
 * the launcher, in a transaction with SPI); returns how many.  Entries of
 * models that no longer exist, or of another database, are left out.
 */
int64
CaptureFlush(void)
{
	char	   *buf;
	uint64		n;
	uint64		start;
	ArrayBuildState *ids;
	ArrayBuildState *ats;
	ArrayBuildState *outs;
	ArrayBuildState *inputs;
	int64		count = 0;
	Oid			types[4] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID, TEXTARRAYOID};
	Datum		values[4];

	if (ring == NULL)
		return 0;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	n = ring->written - ring->read;
	start = ring->read;
	buf = n > 0 ? palloc(n) : NULL;
	if (n > 0)
		ring_get(start, buf, n);
	ring->read = ring->written;
	LWLockRelease(ring->lock);
	if (n == 0)
		return 0;

	ids = initArrayResult(INT8OID, CurrentMemoryContext, false);
	ats = initArrayResult(TIMESTAMPTZOID, CurrentMemoryContext, false);
	outs = initArrayResult(FLOAT8OID, CurrentMemoryContext, false);
	inputs = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	for (uint64 off = 0; off + sizeof(CaptureHeader) <= n;)
	{
		CaptureHeader h;

		memcpy(&h, buf + off, sizeof(h));
		if (h.len < sizeof(h) || off + h.len > n)
			elog(ERROR, "pgmaker's capture ring holds a damaged entry");
		if (h.dboid != MyDatabaseId)
		{
			/* set_capture works only in ml.database: cannot happen */
			off += h.len;
			continue;
		}
		accumArrayResult(ids, Int64GetDatum(h.model_id), false, INT8OID, CurrentMemoryContext);
		accumArrayResult(ats, TimestampTzGetDatum(h.at), false, TIMESTAMPTZOID, CurrentMemoryContext);
		accumArrayResult(outs, Float8GetDatum(h.output), false, FLOAT8OID, CurrentMemoryContext);
		accumArrayResult(inputs,
						 PointerGetDatum(cstring_to_text_with_len(buf + off + sizeof(h), h.len - sizeof(h))),
						 false, TEXTOID, CurrentMemoryContext);
		off += h.len;
		count++;
	}
	values[0] = makeArrayResult(ids, CurrentMemoryContext);
	values[1] = makeArrayResult(ats, CurrentMemoryContext);
	values[2] = makeArrayResult(outs, CurrentMemoryContext);
	values[3] = makeArrayResult(inputs, CurrentMemoryContext);
	BgwRun("INSERT INTO ml.captured (captured_at, project_id, model_id, inputs, output)"
		   " SELECT u.at, m.project_id, u.model_id, u.input::json, u.output"
		   "   FROM unnest($1, $2, $3, $4) u(model_id, at, output, input)"
		   "   JOIN ml.models m ON m.id = u.model_id",
		   4, types, values, NULL, SPI_OK_INSERT);
	pfree(buf);
	return count;
}

/*
 * ml_set_capture is ml.set_capture(project, rate): the fraction of the
 * project's ml.predict calls to capture, for members of its owner role.
 */
Datum
ml_set_capture(PG_FUNCTION_ARGS)
{
	char	   *project;
	double		rate;
	ProjectInfo pi;
	Oid			types[2] = {INT8OID, FLOAT8OID};
	Datum		values[2];
	RoleSwitch	rs;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("project and rate must not be NULL")));
	project = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rate = PG_GETARG_FLOAT8(1);
	if (!(rate >= 0 && rate <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate must be between 0 and 1, not %g", rate)));
	if (ring == NULL && rate > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("prediction capture needs pgmaker in shared_preload_libraries"),
				 errhint("Add pgmaker to shared_preload_libraries and restart the server.")));
	if (ring != NULL && strcmp(get_database_name(MyDatabaseId), ml_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("predictions are captured in database \"%s\", not in \"%s\"",
						ml_database, get_database_name(MyDatabaseId)),
				 errhint("ml.database names the database whose launcher stores the captures.")));
	CatalogRequireProject(project, &pi);
	CatalogCheckOwner(&pi);
	values[0] = Int64GetDatum(pi.id);
	values[1] = Float8GetDatum(rate);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	BgwRun("UPDATE ml.projects SET capture_rate = $2 WHERE id = $1", 2, types, values, NULL, SPI_OK_UPDATE);
	BgwRestoreRole(&rs);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * ml_capture_counters is ml._capture_counters(): the ring's counts since
 * the server started, and the bytes waiting for the launcher.
 */
Datum
ml_capture_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml._capture_counters must return a row");
	if (ring == NULL)
	{
		values[0] = BoolGetDatum(false);
		nulls[1] = nulls[2] = nulls[3] = true;
	}
	else
	{
		LWLockAcquire(ring->lock, LW_SHARED);
		values[0] = BoolGetDatum(true);
		values[1] = Int64GetDatum((int64) ring->captured);
		values[2] = Int64GetDatum((int64) ring->dropped);
		values[3] = Int64GetDatum((int64) (ring->written - ring->read));
		LWLockRelease(ring->lock);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
