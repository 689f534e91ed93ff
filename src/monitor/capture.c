/*-------------------------------------------------------------------------
 * src/monitor/capture.c
 *		Prediction capture: a sampled fraction of ml.predict calls, kept in
 *		a ring buffer in shared memory and stored by the launcher.
 *
 * Design.  ml.predict stays STABLE and PARALLEL SAFE and writes no table:
 * a captured call appends one entry (model, time, output, the input as
 * JSON text) to the ring under an LWLock; when the entry does not fit,
 * it is dropped and counted.  The launcher drains the ring at every look
 * (and is woken when the ring is a quarter full) and stores the entries in
 * rows of up to CAPTURE_BATCH captures of one model (ml.capture_batches,
 * which the view ml.captured shows a capture per row): a row per capture
 * would cost the server about as much as the predictions themselves.
 * Entries are never split: the ring holds whole entries between its read
 * and write positions, which only grow.
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
#include "access/xact.h"
#include "utils/timestamp.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "catalog/catalog.h"
#include "monitor/monitor.h"

PG_FUNCTION_INFO_V1(ml_set_capture);
PG_FUNCTION_INFO_V1(ml_capture_counters);

/* An entry is at most this big (and at most a quarter of the ring). */
#define CAPTURE_MAX_ENTRY (64 * 1024)
/* Captures of one model per row of ml.capture_batches, at most. */
#define CAPTURE_BATCH 1000
/* Bytes of the ring one look stores, at most. */
#define CAPTURE_FLUSH_MAX ((uint64) 64 * 1024 * 1024)

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
	/* the statement's start: no clock read per capture */
	h.at = GetCurrentStatementStartTimestamp();
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

/* Captures of one model on their way into one row of ml.capture_batches. */
typedef struct CaptureBatch
{
	int64		model_id;
	int			n;
	TimestampTz first_at;
	TimestampTz last_at;
	ArrayBuildState *ats;
	ArrayBuildState *inputs;
	ArrayBuildState *outputs;
} CaptureBatch;

static void
batch_start(CaptureBatch *b, int64 model_id)
{
	b->model_id = model_id;
	b->n = 0;
	b->ats = initArrayResult(TIMESTAMPTZOID, CurrentMemoryContext, false);
	b->inputs = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	b->outputs = initArrayResult(FLOAT8OID, CurrentMemoryContext, false);
}

/* Inserts a batch (of a model that still exists) and empties it. */
static void
batch_store(CaptureBatch *b, SPIPlanPtr plan)
{
	Datum		values[7];

	if (b->n == 0)
		return;
	values[0] = Int64GetDatum(b->model_id);
	values[1] = TimestampTzGetDatum(b->first_at);
	values[2] = TimestampTzGetDatum(b->last_at);
	values[3] = Int32GetDatum(b->n);
	values[4] = makeArrayResult(b->ats, CurrentMemoryContext);
	values[5] = makeArrayResult(b->inputs, CurrentMemoryContext);
	values[6] = makeArrayResult(b->outputs, CurrentMemoryContext);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store captured predictions");
	batch_start(b, b->model_id);
}

/*
 * CaptureFlush stores the ring's entries, at most CAPTURE_FLUSH_MAX bytes
 * of them, in ml.capture_batches, one row per model and CAPTURE_BATCH
 * entries (the caller is the launcher, in a transaction with SPI), and
 * returns how many.  The entries stay in the ring until the caller, after
 * its commit, hands *upto to CaptureConsumed: an error keeps them for the
 * next look.  Entries of models that no longer exist, or of another
 * database, are left out.
 */
int64
CaptureFlush(uint64 *upto)
{
	char	   *buf;
	uint64		n;
	uint64		start;
	int64		count = 0;
	CaptureBatch *batches = NULL;
	int			nbatches = 0;
	int			maxbatches = 0;
	SPIPlanPtr	plan;
	Oid			types[7] = {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID,
	TIMESTAMPTZARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID};

	*upto = 0;
	if (ring == NULL)
		return 0;

	/*
	 * Writers never touch the bytes between read and written, and only the
	 * launcher moves read: copy them without holding the lock, which would
	 * stall every capturing backend meanwhile.  Whole entries only, up to
	 * CAPTURE_FLUSH_MAX bytes.
	 */
	LWLockAcquire(ring->lock, LW_SHARED);
	start = ring->read;
	n = ring->written - start;
	LWLockRelease(ring->lock);
	if (n == 0)
		return 0;
	if (n > CAPTURE_FLUSH_MAX)
	{
		uint64		whole = 0;

		while (whole < n)
		{
			CaptureHeader h;

			ring_get(start + whole, &h, sizeof(h));
			if (h.len < sizeof(h) || whole + h.len > CAPTURE_FLUSH_MAX)
				break;
			whole += h.len;
		}
		n = whole;
	}
	buf = palloc(n);
	ring_get(start, buf, n);
	*upto = start + n;

	plan = SPI_prepare("INSERT INTO ml.capture_batches (project_id, model_id, first_at, last_at, n,"
					   "                                captured_at, inputs, outputs)"
					   " SELECT m.project_id, $1, $2, $3, $4, $5, $6, $7 FROM ml.models m WHERE m.id = $1",
					   7, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	for (uint64 off = 0; off + sizeof(CaptureHeader) <= n;)
	{
		CaptureHeader h;
		CaptureBatch *b = NULL;

		memcpy(&h, buf + off, sizeof(h));
		if (h.len < sizeof(h) || off + h.len > n)
		{
			/* cannot happen; retrying would fail forever, so let them go */
			ereport(WARNING,
					(errmsg("pgmaker's capture ring holds a damaged entry; %llu bytes of captures are dropped",
							(unsigned long long) (n - off))));
			break;
		}
		if (h.dboid != MyDatabaseId)
		{
			/* ml.set_capture works only in ml.database: cannot happen */
			off += h.len;
			continue;
		}
		for (int i = 0; i < nbatches && b == NULL; i++)
			if (batches[i].model_id == h.model_id)
				b = &batches[i];
		if (b == NULL)
		{
			if (nbatches == maxbatches)
			{
				maxbatches = Max(8, maxbatches * 2);
				batches = batches ? repalloc(batches, sizeof(CaptureBatch) * maxbatches)
					: palloc(sizeof(CaptureBatch) * maxbatches);
			}
			b = &batches[nbatches++];
			batch_start(b, h.model_id);
		}
		if (b->n == 0)
			b->first_at = b->last_at = h.at;
		b->first_at = Min(b->first_at, h.at);
		b->last_at = Max(b->last_at, h.at);
		accumArrayResult(b->ats, TimestampTzGetDatum(h.at), false, TIMESTAMPTZOID, CurrentMemoryContext);
		accumArrayResult(b->inputs,
						 PointerGetDatum(cstring_to_text_with_len(buf + off + sizeof(h), h.len - sizeof(h))),
						 false, TEXTOID, CurrentMemoryContext);
		accumArrayResult(b->outputs, Float8GetDatum(h.output), false, FLOAT8OID, CurrentMemoryContext);
		b->n++;
		if (b->n == CAPTURE_BATCH)
			batch_store(b, plan);
		off += h.len;
		count++;
	}
	for (int i = 0; i < nbatches; i++)
		batch_store(&batches[i], plan);
	SPI_freeplan(plan);
	pfree(buf);
	return count;
}

/* CaptureConsumed frees the ring up to a position CaptureFlush gave. */
void
CaptureConsumed(uint64 upto)
{
	if (ring == NULL || upto == 0)
		return;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (upto > ring->read && upto <= ring->written)
		ring->read = upto;
	LWLockRelease(ring->lock);
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
	/* who may, before what the server lacks */
	CatalogRequireProject(project, &pi);
	CatalogCheckOwner(&pi);
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
