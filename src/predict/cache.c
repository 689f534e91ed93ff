/*-------------------------------------------------------------------------
 * src/predict/cache.c
 *		The per-backend model cache and its invalidation.
 *
 * Cleanup policy: every cached model lives in a memory context of its own
 * under the cache context.  Invalidation only sets a flag (callbacks may
 * run at awkward times); the next lookup moves every model context under
 * the "retired" context, which the transaction callback resets at commit
 * or abort.  A model being loaded is built under the caller's memory
 * context, so an error while reading it leaks nothing, and moves under
 * the cache once it is read.
 *
 * Snapshots: under READ COMMITTED the catalog is read with the latest
 * snapshot, as the system caches read system catalogs, so that a
 * deployment whose invalidation has been processed is always the one
 * loaded.  A REPEATABLE READ or SERIALIZABLE transaction reads with its
 * own snapshot, so it predicts with the model its snapshot shows live;
 * what it loads then may be older than invalidations already spent, so
 * it is dropped when the transaction ends.  Parallel mode cannot take a
 * new snapshot and is handled the same way.
 *-------------------------------------------------------------------------
 */
#include "predict/predict.h"

#include "access/xact.h"
#include "catalog/catalog.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

typedef struct ProjectEntry
{
	char		name[NAMEDATALEN];	/* key */
	Model	   *model;
	ProjectAccess *access;		/* its model's */
} ProjectEntry;

/*
 * A model, with the owner and grants of its project: every lookup checks
 * that the current user may predict with it (the user can change between
 * lookups; a grant's change is a catalog change, which retires the entry).
 */
typedef struct ModelEntry
{
	int64		model_id;		/* key */
	Model	   *model;
	ProjectAccess *access;
	MemoryContext cxt;
} ModelEntry;

static MemoryContext cache_cxt = NULL;
static MemoryContext retired_cxt = NULL;
static HTAB *project_cache = NULL;
static HTAB *model_cache = NULL;
static bool cache_stale = false;

/* Bumped when cached models may be out of date / when any relation changed. */
uint64		CacheGeneration = 0;
uint64		RelcacheGeneration = 0;
static bool cache_provisional = false;	/* drop at transaction end */
static Oid	watched_relids[4];

static void
cache_relcache_callback(Datum arg, Oid relid)
{
	bool		ours = !OidIsValid(relid) || !OidIsValid(watched_relids[0]);

	for (int i = 0; i < lengthof(watched_relids); i++)
		if (relid == watched_relids[i])
			ours = true;
	if (ours)
	{
		cache_stale = true;
		CacheGeneration++;
	}
	RelcacheGeneration++;
}

static void
cache_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (retired_cxt)
				MemoryContextReset(retired_cxt);
			if (cache_provisional)
			{
				cache_stale = true;
				CacheGeneration++;
			}
			cache_provisional = false;
			break;
		default:
			break;
	}
}

/*
 * PredictInit registers the cache's invalidation and transaction callbacks.
 */
void
PredictInit(void)
{
	CacheRegisterRelcacheCallback(cache_relcache_callback, (Datum) 0);
	RegisterXactCallback(cache_xact_callback, NULL);
}

/*
 * CacheInvalidate marks the cache stale in this backend (other backends
 * learn it from the relcache invalidation the catalog trigger sends).
 */
void
CacheInvalidate(void)
{
	cache_stale = true;
	CacheGeneration++;
}

/*
 * Makes the snapshot the catalog is read with active; returns whether one
 * was pushed (pop it with PopActiveSnapshot).
 */
static bool
cache_snapshot_push(void)
{
	if (IsolationUsesXactSnapshot() || IsInParallelMode())
	{
		cache_provisional = true;
		return false;
	}
	PushActiveSnapshot(GetLatestSnapshot());
	return true;
}

/*
 * Creates the hashes, or retires every entry when the cache is stale.
 * Called once per query (fn_extra keeps the model after that), it first
 * reads pending invalidations: a statement that opens no table would not
 * otherwise see a deployment committed since its transaction began.
 */
static void
cache_prepare(void)
{
	HASHCTL		ctl;

	AcceptInvalidationMessages();

	if (cache_cxt == NULL)
	{
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "pgmaker model cache",
										  ALLOCSET_SMALL_SIZES);
		retired_cxt = AllocSetContextCreate(TopMemoryContext, "pgmaker retired models",
											ALLOCSET_SMALL_SIZES);
		cache_stale = true;
	}
	if (!cache_stale && project_cache != NULL)
		return;

	if (model_cache)
	{
		HASH_SEQ_STATUS seq;
		ModelEntry *entry;

		hash_seq_init(&seq, model_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
			MemoryContextSetParent(entry->cxt, retired_cxt);
		hash_destroy(model_cache);
		hash_destroy(project_cache);
	}

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(ProjectEntry);
	ctl.hcxt = cache_cxt;
	project_cache = hash_create("pgmaker projects", 16, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ModelEntry);
	ctl.hcxt = cache_cxt;
	model_cache = hash_create("pgmaker models", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* clear the flag before reading the catalog, so that news count */
	watched_relids[0] = CatalogRelid("projects");
	watched_relids[1] = CatalogRelid("models");
	watched_relids[2] = CatalogRelid("deployments");
	watched_relids[3] = CatalogRelid("project_grants");
	cache_stale = false;
}

/*
 * Returns the cache entry of a model, reading and checking its blob once
 * per backend, after checking that the current user may predict with it.
 */
static ModelEntry *
cache_model_entry(int64 model_id)
{
	ModelEntry *entry;
	MemoryContext cxt;
	MemoryContext old;
	Model	   *model;
	ProjectAccess *access;
	bytea	   *blob;
	int64		project_id;
	double		capture_rate;
	bool		found;
	bool		pushed;

	cache_prepare();
	entry = hash_search(model_cache, &model_id, HASH_FIND, NULL);
	if (entry)
	{
		CatalogRequireAccess(entry->access, ML_ACCESS_PREDICT);
		return entry;
	}

	/* under the caller's context until it is read: an error frees it */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker model", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	pushed = cache_snapshot_push();
	blob = CatalogModelBlob(model_id, &project_id);
	capture_rate = CatalogCaptureRate(project_id);
	access = palloc(sizeof(ProjectAccess));
	CatalogLoadAccess(project_id, access);
	if (pushed)
		PopActiveSnapshot();
	CatalogRequireAccess(access, ML_ACCESS_PREDICT);
	model = ModelDeserialize(blob, model_id);
	model->capture_rate = capture_rate;
	pfree(blob);
	MemoryContextSwitchTo(old);

	MemoryContextSetParent(cxt, cache_cxt);
	entry = hash_search(model_cache, &model_id, HASH_ENTER, &found);
	entry->model = model;
	entry->access = access;
	entry->cxt = cxt;
	return entry;
}

/*
 * CacheModel returns a model by id, for a user who may predict with its
 * project.
 */
Model *
CacheModel(int64 model_id)
{
	return cache_model_entry(model_id)->model;
}

/*
 * CacheProjectModel returns the live model of a project.
 */
Model *
CacheProjectModel(const char *project)
{
	ProjectEntry *entry;
	ModelEntry *mentry;
	ProjectInfo info;
	int64		model_id;
	bool		pushed;

	CatalogCheckProjectName(project);
	cache_prepare();
	entry = hash_search(project_cache, project, HASH_FIND, NULL);
	if (entry)
	{
		CatalogRequireAccess(entry->access, ML_ACCESS_PREDICT);
		return entry->model;
	}

	pushed = cache_snapshot_push();
	CatalogRequireProject(project, &info);
	model_id = CatalogLiveModelId(info.id);
	if (pushed)
		PopActiveSnapshot();
	if (model_id == 0)
	{
		CatalogCheckAccess(&info, ML_ACCESS_PREDICT);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("project \"%s\" has no deployed model", project),
				 errhint("Deploy one with ml.deploy('%s', 'best_score').", project)));
	}
	mentry = cache_model_entry(model_id);
	entry = hash_search(project_cache, project, HASH_ENTER, NULL);
	entry->model = mentry->model;
	entry->access = mentry->access;
	return mentry->model;
}
