/*-------------------------------------------------------------------------
 * src/catalog/catalog.c
 *		Reads and writes of the ml.* catalog tables through SPI.
 *
 * Each function connects to SPI, switches to the catalog owner for its
 * statements (SECURITY_LOCAL_USERID_CHANGE, undone on error by the
 * transaction machinery), copies what it returns into the caller's memory
 * context, and disconnects.
 *-------------------------------------------------------------------------
 */
#include "catalog/catalog.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

typedef struct CatalogCall
{
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	MemoryContext outer;
} CatalogCall;

/*
 * CatalogRelid returns the OID of a table of schema ml.
 */
Oid
CatalogRelid(const char *relname)
{
	Oid			nsp = get_namespace_oid("ml", false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"ml.%s\" does not exist", relname),
				 errhint("Run CREATE EXTENSION pgmaker in this database.")));
	return relid;
}

/* CatalogOwner is the owner of the extension's tables. */
Oid
CatalogOwner(void)
{
	Oid			relid = CatalogRelid("projects");
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Starts a catalog call: SPI, the catalog owner's identity in a restricted
 * security context, and a search_path of pg_catalog only, so that no
 * object of the caller's can be reached by the owner's statements.
 */
static void
catalog_begin(CatalogCall *cc)
{
	Oid			owner = CatalogOwner();

	cc->outer = CurrentMemoryContext;
	GetUserIdAndSecContext(&cc->save_user, &cc->save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	SetUserIdAndSecContext(owner, cc->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	cc->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

static void
catalog_end(CatalogCall *cc)
{
	AtEOXact_GUC(false, cc->save_nestlevel);
	SetUserIdAndSecContext(cc->save_user, cc->save_sec);
	SPI_finish();
}

static void
catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
			 const char *nulls, bool read_only, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls,
										   read_only, 0);

	if (rc < 0 || (expected > 0 && rc != expected))
		elog(ERROR, "catalog statement failed (%s): %s", SPI_result_code_string(rc), sql);
}

/* The first column of the first row as int64, or 0 when there is none. */
static int64
catalog_int64_result(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * CatalogCheckProjectName rejects names that cannot be a project's.
 */
void
CatalogCheckProjectName(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("project name must have 1 to %d bytes", NAMEDATALEN - 1)));
}

static void
project_from_tuple(HeapTuple tup, TupleDesc desc, MemoryContext outer, ProjectInfo *out)
{
	MemoryContext old = MemoryContextSwitchTo(outer);
	bool		isnull;
	char	   *task;

	out->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	out->name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
	task = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	if (!MLTaskFromName(task, &out->task))
		elog(ERROR, "project \"%s\" has unknown task \"%s\"", out->name, task);
	{
		Datum		d = SPI_getbinval(tup, desc, 4, &isnull);

		out->target = isnull ? NULL : TextDatumGetCString(d);
	}
	out->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 5, &isnull));
	MemoryContextSwitchTo(old);
}

/*
 * CatalogFindProject looks a project up by name; false when it does not
 * exist.
 */
bool
CatalogFindProject(const char *name, ProjectInfo *out)
{
	CatalogCall cc;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		found;

	catalog_begin(&cc);
	catalog_exec("SELECT id, name, task, target, owner::oid FROM ml.projects WHERE name = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	found = SPI_processed > 0;
	if (found)
		project_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, cc.outer, out);
	catalog_end(&cc);
	return found;
}

/*
 * CatalogRequireProject is CatalogFindProject for a project that must
 * exist.
 */
void
CatalogRequireProject(const char *name, ProjectInfo *out)
{
	if (!CatalogFindProject(name, out))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("project \"%s\" does not exist", name),
				 errhint("Train a model first with ml.train('%s', ...).", name)));
}

/*
 * CatalogProjectById reads the project a model belongs to.
 */
void
CatalogProjectById(int64 project_id, ProjectInfo *out)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};

	catalog_begin(&cc);
	catalog_exec("SELECT id, name, task, target, owner::oid FROM ml.projects WHERE id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("project %lld does not exist", (long long) project_id)));
	project_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, cc.outer, out);
	catalog_end(&cc);
}

/*
 * CatalogCheckOwner lets only members of the project's owner role (and of
 * ml_admin) change the project.
 */
void
CatalogCheckOwner(const ProjectInfo *project)
{
	CatalogCheckAccess(project, ML_ACCESS_OWN);
}

static const char *const access_names[] = {NULL, "predict", "train", "deploy", "own"};

const char *
MLAccessName(MLAccess level)
{
	return access_names[level];
}

/*
 * CatalogOwns says whether user may act as the owner role of a project,
 * job or schedule: as a member of it or of ml_admin (superusers are both).
 */
bool
CatalogOwns(Oid user, Oid owner)
{
	Oid			admin;

	if (has_privs_of_role(user, owner))
		return true;
	admin = get_role_oid("ml_admin", true);
	return OidIsValid(admin) && has_privs_of_role(user, admin);
}

/*
 * CatalogLoadAccess reads a project's owner and grants into out, allocated
 * in the current memory context.
 */
void
CatalogLoadAccess(int64 project_id, ProjectAccess *out)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};
	bool		isnull;
	MemoryContext old;

	memset(out, 0, sizeof(*out));
	out->project_id = project_id;
	catalog_begin(&cc);
	catalog_exec("SELECT p.name, p.owner::oid, g.grantee::oid, g.privilege "
				 "FROM ml.projects p LEFT JOIN ml.project_grants g ON g.project_id = p.id "
				 "WHERE p.id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("project %lld does not exist", (long long) project_id)));
	old = MemoryContextSwitchTo(cc.outer);
	out->grantees = palloc(sizeof(Oid) * SPI_processed);
	out->levels = palloc(sizeof(MLAccess) * SPI_processed);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *priv;

		if (i == 0)
		{
			text	   *name = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));

			text_to_cstring_buffer(name, out->name, NAMEDATALEN);
			out->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		}
		out->grantees[out->ngrants] = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		if (isnull)
			continue;
		priv = SPI_getvalue(tup, desc, 4);
		out->levels[out->ngrants] = strcmp(priv, "deploy") == 0 ? ML_ACCESS_DEPLOY :
			strcmp(priv, "train") == 0 ? ML_ACCESS_TRAIN : ML_ACCESS_PREDICT;
		out->ngrants++;
	}
	MemoryContextSwitchTo(old);
	catalog_end(&cc);
}

/*
 * CatalogAccessAllows says whether the current user may do what need
 * names with the project.  Role membership is looked up each time (the
 * server caches it), so a REVOKE of a role takes effect at once.
 */
bool
CatalogAccessAllows(const ProjectAccess *access, MLAccess need)
{
	Oid			user = GetUserId();

	if (CatalogOwns(user, access->owner))
		return true;
	for (int i = 0; i < access->ngrants; i++)
		if (access->levels[i] >= need && has_privs_of_role(user, access->grantees[i]))
			return true;
	return false;
}

/*
 * CatalogRequireAccess raises insufficient_privilege unless the current
 * user may do what need names with the project.
 */
void
CatalogRequireAccess(const ProjectAccess *access, MLAccess need)
{
	char	   *owner;

	if (CatalogAccessAllows(access, need))
		return;
	owner = GetUserNameFromId(access->owner, true);
	if (need == ML_ACCESS_OWN)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of role \"%s\" to change project \"%s\"",
						owner ? owner : "?", access->name)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s with project \"%s\"",
					MLAccessName(need), access->name),
			 errhint("A member of its owner role \"%s\" can grant it: ml.grant('%s', role, '%s').",
					 owner ? owner : "?", access->name, MLAccessName(need))));
}

/*
 * CatalogMayAccess is CatalogAccessAllows for a project read by name or
 * id: it reads the grants unless the owner's membership settles it.
 */
bool
CatalogMayAccess(const ProjectInfo *project, MLAccess need)
{
	ProjectAccess access;
	bool		ok;

	if (has_privs_of_role(GetUserId(), project->owner))
		return true;
	CatalogLoadAccess(project->id, &access);
	ok = CatalogAccessAllows(&access, need);
	pfree(access.grantees);
	pfree(access.levels);
	return ok;
}

/*
 * CatalogCheckAccess is CatalogRequireAccess for a project read by name
 * or id.
 */
void
CatalogCheckAccess(const ProjectInfo *project, MLAccess need)
{
	ProjectAccess access;

	if (has_privs_of_role(GetUserId(), project->owner))
		return;
	CatalogLoadAccess(project->id, &access);
	CatalogRequireAccess(&access, need);
	pfree(access.grantees);
	pfree(access.levels);
}

/*
 * CatalogSetGrant gives grantee the level of access to the project,
 * replacing what it had.
 */
void
CatalogSetGrant(const ProjectInfo *project, Oid grantee, MLAccess level)
{
	CatalogCall cc;
	Oid			types[5] = {INT8OID, OIDOID, TEXTOID, OIDOID, OIDOID};
	Datum		values[5];

	values[0] = Int64GetDatum(project->id);
	values[1] = ObjectIdGetDatum(grantee);
	values[2] = CStringGetTextDatum(MLAccessName(level));
	values[3] = ObjectIdGetDatum(project->owner);
	values[4] = ObjectIdGetDatum(GetUserId());
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.project_grants AS g (project_id, grantee, privilege, owner, granted_by) "
				 "VALUES ($1, $2::regrole, $3, $4::regrole, $5::regrole) "
				 "ON CONFLICT (project_id, grantee) DO UPDATE "
				 "SET privilege = excluded.privilege, granted_by = excluded.granted_by, "
				 "granted_at = excluded.granted_at",
				 5, types, values, NULL, false, SPI_OK_INSERT);
	catalog_end(&cc);
}

/*
 * CatalogDeleteGrant takes grantee's access to the project away; false
 * when it had none.
 */
bool
CatalogDeleteGrant(const ProjectInfo *project, Oid grantee)
{
	CatalogCall cc;
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		values[2] = {Int64GetDatum(project->id), ObjectIdGetDatum(grantee)};
	bool		found;

	catalog_begin(&cc);
	catalog_exec("DELETE FROM ml.project_grants WHERE project_id = $1 AND grantee = $2::regrole",
				 2, types, values, NULL, false, SPI_OK_DELETE);
	found = SPI_processed > 0;
	catalog_end(&cc);
	return found;
}

/*
 * CatalogCreateProject inserts a project owned by the current user and
 * returns its id.
 *
 * The caller found no project of that name, but one may have appeared
 * since: created by an earlier call of the same statement (which the
 * statement's snapshot does not show), or committed by a concurrent
 * transaction.  Then the existing project is read with a fresh snapshot
 * and used if it has the same task and target and the caller may change
 * it.  Under REPEATABLE READ a concurrently committed project stays
 * invisible, which is a serialization failure.
 */
int64
CatalogCreateProject(const char *name, MLTask task, const char *target, Oid *owner)
{
	CatalogCall cc;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, OIDOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', target ? ' ' : 'n', ' '};
	Oid			user = GetUserId();
	int64		id;
	bool		found = false;
	ProjectInfo existing;

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(MLTaskName(task));
	values[2] = target ? CStringGetTextDatum(target) : (Datum) 0;
	values[3] = ObjectIdGetDatum(user);
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.projects (name, task, target, owner) "
				 "VALUES ($1, $2, $3, $4::regrole) "
				 "ON CONFLICT (name) DO NOTHING RETURNING id",
				 4, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	id = catalog_int64_result();
	if (id == 0)
	{
		/* read_only = false: a new snapshot that sees the other insert */
		catalog_exec("SELECT id, name, task, target, owner::oid FROM ml.projects WHERE name = $1",
					 1, types, values, NULL, false, SPI_OK_SELECT);
		found = SPI_processed > 0;
		if (found)
			project_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, cc.outer, &existing);
	}
	catalog_end(&cc);
	*owner = user;
	if (id != 0)
		return id;

	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not create project \"%s\": a concurrent transaction created it", name),
				 errhint("Retry the transaction.")));
	CatalogCheckOwner(&existing);
	*owner = existing.owner;
	if (existing.task != task)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("project \"%s\" does %s, not %s", name,
						MLTaskName(existing.task), MLTaskName(task)),
				 errhint("A project's task is fixed by its first model; use another project name.")));
	if ((existing.target == NULL) != (target == NULL) ||
		(target && strcmp(existing.target, target) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("project \"%s\" predicts \"%s\", not \"%s\"", name,
						existing.target ? existing.target : "(no target)",
						target ? target : "(no target)"),
				 errhint("A project's target is fixed by its first model; use another project name.")));
	return existing.id;
}

/*
 * CatalogInsertModel stores a trained model and returns its id.
 */
int64
CatalogInsertModel(const ModelRow *row)
{
	CatalogCall cc;
	Oid			types[14] = {INT8OID, TEXTOID, JSONBOID, JSONBOID, JSONBOID, JSONBOID,
	JSONBOID, JSONBOID, INT8OID, INT8OID, FLOAT8OID, BYTEAOID, INT8OID, JSONBOID};
	Datum		values[14];
	char		nulls[14];
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row->project_id);
	values[1] = CStringGetTextDatum(row->algorithm);
	values[2] = JsonbPGetDatum(row->hyperparams);
	values[3] = JsonbPGetDatum(row->preprocess);
	values[4] = JsonbPGetDatum(row->features);
	values[5] = JsonbPGetDatum(row->metrics);
	values[6] = row->train_metrics ? JsonbPGetDatum(row->train_metrics) : (Datum) 0;
	nulls[6] = row->train_metrics ? ' ' : 'n';
	values[7] = row->baseline ? JsonbPGetDatum(row->baseline) : (Datum) 0;
	nulls[7] = row->baseline ? ' ' : 'n';
	values[8] = Int64GetDatum(row->n_train);
	values[9] = Int64GetDatum(row->n_test);
	values[10] = Float8GetDatum(row->fit_seconds);
	values[11] = PointerGetDatum(row->blob);
	values[12] = Int64GetDatum(row->run_id);
	nulls[12] = row->run_id == 0 ? 'n' : ' ';
	values[13] = row->curves ? JsonbPGetDatum(row->curves) : (Datum) 0;
	nulls[13] = row->curves ? ' ' : 'n';

	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.models (project_id, algorithm, hyperparams, preprocess, "
				 "features, metrics, train_metrics, baseline, n_train, n_test, fit_seconds, model, "
				 "run_id, curves) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
				 14, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

/*
 * CatalogInsertTrainingLog stores a model's per-iteration telemetry in one
 * statement.
 */
void
CatalogInsertTrainingLog(int64 model_id, int n, const int32 *iterations, Jsonb **metrics)
{
	CatalogCall cc;
	Oid			types[3] = {INT8OID, INT4ARRAYOID, JSONBARRAYOID};
	Datum		values[3];
	Datum	   *its;
	Datum	   *mets;

	if (n == 0)
		return;
	its = palloc(sizeof(Datum) * n);
	mets = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		its[i] = Int32GetDatum(iterations[i]);
		mets[i] = JsonbPGetDatum(metrics[i]);
	}
	values[0] = Int64GetDatum(model_id);
	values[1] = PointerGetDatum(construct_array(its, n, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(mets, n, JSONBOID, -1, false, TYPALIGN_INT));
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.training_log (model_id, iteration, metrics) "
				 "SELECT $1, i, m FROM unnest($2, $3) AS u(i, m)",
				 3, types, values, NULL, false, SPI_OK_INSERT);
	catalog_end(&cc);
}

/*
 * CatalogInsertDebugEvents stores what the debugger rules of a model's
 * training found (a JSON array of DebugReport), and raises a debugger
 * alert listing the fired rules when alert says so.
 */
void
CatalogInsertDebugEvents(int64 model_id, Jsonb *events, bool alert)
{
	CatalogCall cc;
	Oid			types[2] = {INT8OID, JSONBOID};
	Datum		values[2] = {Int64GetDatum(model_id), JsonbPGetDatum(events)};

	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.debug_events (model_id, rule, status, action, iteration, detail)"
				 " SELECT $1, e->>'rule', e->>'status', e->>'action', (e->>'iteration')::int, e->>'detail'"
				 "   FROM jsonb_array_elements($2) e",
				 2, types, values, NULL, false, SPI_OK_INSERT);
	if (alert)
		catalog_exec("SELECT ml._raise_alert('debugger', 'warning', m.project_id, p.owner,"
					 "   format('training of model %s fired debugger rules: %s', m.id,"
					 "          (SELECT string_agg(e->>'rule', ', ') FROM jsonb_array_elements($2) e"
					 "            WHERE e->>'status' = 'fired' AND e->>'action' = 'alert')),"
					 "   jsonb_build_object('model_id', m.id, 'rules', $2))"
					 "  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE m.id = $1",
					 2, types, values, NULL, false, SPI_OK_SELECT);
	catalog_end(&cc);
}

/*
 * CatalogLiveModelId returns the model of the project's newest deployment,
 * or 0 when it has none.
 */
int64
CatalogLiveModelId(int64 project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};
	int64		id;

	catalog_begin(&cc);
	catalog_exec("SELECT model_id FROM ml.deployments WHERE project_id = $1 "
				 "ORDER BY id DESC LIMIT 1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

/*
 * CatalogCaptureRate returns the fraction of a project's predictions to
 * capture (0 when the project is gone).
 */
double
CatalogCaptureRate(int64 project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};
	double		rate = 0;
	bool		isnull;

	catalog_begin(&cc);
	catalog_exec("SELECT capture_rate FROM ml.projects WHERE id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 1)
		rate = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	catalog_end(&cc);
	return rate;
}

/*
 * CatalogModelBlob returns a model's blob, and its project in *project_id.
 */
bytea *
CatalogModelBlob(int64 model_id, int64 *project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(model_id)};
	bytea	   *blob;
	bool		isnull;

	catalog_begin(&cc);
	catalog_exec("SELECT project_id, model FROM ml.models WHERE id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) model_id)));
	*project_id = catalog_int64_result();
	{
		MemoryContext old = MemoryContextSwitchTo(cc.outer);
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

		blob = DatumGetByteaPCopy(d);
		MemoryContextSwitchTo(old);
	}
	catalog_end(&cc);
	return blob;
}

/*
 * CatalogModelAlgorithm returns a model's algorithm and project.
 */
char *
CatalogModelAlgorithm(int64 model_id, int64 *project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(model_id)};
	char	   *algorithm;
	bool		isnull;

	catalog_begin(&cc);
	catalog_exec("SELECT project_id, algorithm FROM ml.models WHERE id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) model_id)));
	*project_id = catalog_int64_result();
	{
		MemoryContext old = MemoryContextSwitchTo(cc.outer);

		algorithm = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContextSwitchTo(old);
	}
	catalog_end(&cc);
	return algorithm;
}

/*
 * CatalogInsertDeployment appends a deployment; it becomes the project's
 * live model when the transaction commits.
 */
void
CatalogInsertDeployment(int64 project_id, int64 model_id, const char *strategy,
						const char *reason)
{
	CatalogCall cc;
	Oid			types[5] = {INT8OID, INT8OID, TEXTOID, TEXTOID, OIDOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', reason ? ' ' : 'n', ' '};
	Oid			user = GetUserId();

	values[0] = Int64GetDatum(project_id);
	values[1] = Int64GetDatum(model_id);
	values[2] = CStringGetTextDatum(strategy);
	values[3] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	values[4] = ObjectIdGetDatum(user);
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.deployments (project_id, model_id, strategy, reason, deployed_by) "
				 "VALUES ($1, $2, $3, $4, $5::regrole)",
				 5, types, values, nulls, false, SPI_OK_INSERT);
	catalog_end(&cc);
}

/*
 * CatalogInsertPromotion records a promotion decision of ml.train, deployed
 * or not.  live_model_id 0, and NaN figures, are stored as NULL.
 */
void
CatalogInsertPromotion(const PromotionRow *row)
{
	CatalogCall cc;
	Oid			types[10] = {INT8OID, INT8OID, INT8OID, TEXTOID, BOOLOID, TEXTOID,
	FLOAT8OID, FLOAT8OID, FLOAT8OID, TEXTOID};
	Datum		values[10];
	char		nulls[10];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row->project_id);
	values[1] = Int64GetDatum(row->model_id);
	values[2] = Int64GetDatum(row->live_model_id);
	nulls[2] = row->live_model_id == 0 ? 'n' : ' ';
	values[3] = CStringGetTextDatum(row->mode);
	values[4] = BoolGetDatum(row->promoted);
	values[5] = row->metric ? CStringGetTextDatum(row->metric) : (Datum) 0;
	nulls[5] = row->metric ? ' ' : 'n';
	values[6] = Float8GetDatum(row->score);
	nulls[6] = isnan(row->score) ? 'n' : ' ';
	values[7] = Float8GetDatum(row->live_score);
	nulls[7] = isnan(row->live_score) ? 'n' : ' ';
	values[8] = Float8GetDatum(row->p_value);
	nulls[8] = isnan(row->p_value) ? 'n' : ' ';
	values[9] = CStringGetTextDatum(row->reason);
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.promotions (project_id, model_id, live_model_id, mode, promoted, "
				 "metric, score, live_score, p_value, reason) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
				 10, types, values, nulls, false, SPI_OK_INSERT);
	catalog_end(&cc);
}

/*
 * CatalogInsertRun records a search or autopilot run and returns its id;
 * CatalogFinishRun adds the model it chose, its report and its duration.
 */
int64
CatalogInsertRun(const RunRow *row)
{
	CatalogCall cc;
	Oid			types[9] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, FLOAT8OID,
	INT4OID, INT4OID, BOOLOID};
	Datum		values[9];
	char		nulls[9];
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row->project_id);
	values[1] = CStringGetTextDatum(row->kind);
	values[2] = CStringGetTextDatum(row->strategy);
	values[3] = CStringGetTextDatum(row->metric);
	values[4] = Int32GetDatum(row->folds);
	values[5] = Float8GetDatum(row->max_seconds);
	nulls[5] = row->max_seconds > 0 ? ' ' : 'n';
	values[6] = Int32GetDatum(row->trials_planned);
	values[7] = Int32GetDatum(row->trials_run);
	values[8] = BoolGetDatum(row->stopped_by_time);
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.runs (project_id, kind, strategy, metric, folds, max_seconds, "
				 "trials_planned, trials_run, stopped_by_time) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
				 9, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

void
CatalogFinishRun(int64 run_id, int64 model_id, Jsonb *report, double seconds)
{
	CatalogCall cc;
	Oid			types[4] = {INT8OID, INT8OID, JSONBOID, FLOAT8OID};
	Datum		values[4];

	values[0] = Int64GetDatum(run_id);
	values[1] = Int64GetDatum(model_id);
	values[2] = JsonbPGetDatum(report);
	values[3] = Float8GetDatum(seconds);
	catalog_begin(&cc);
	catalog_exec("UPDATE ml.runs SET model_id = $2, report = $3, seconds = $4 WHERE id = $1",
				 4, types, values, NULL, false, SPI_OK_UPDATE);
	catalog_end(&cc);
}

/*
 * CatalogInsertTrial records one finished trial of a run; a NaN mean or
 * standard deviation is stored as NULL.
 */
void
CatalogInsertTrial(int64 run_id, const TrialRow *row)
{
	CatalogCall cc;
	Oid			types[11] = {INT8OID, INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID,
	FLOAT8ARRAYOID, FLOAT8OID, FLOAT8OID, BOOLOID, FLOAT8OID};
	Datum		values[11];
	char		nulls[11];
	Datum	   *scores = palloc(sizeof(Datum) * Max(row->nfolds, 1));

	memset(nulls, ' ', sizeof(nulls));
	for (int f = 0; f < row->nfolds; f++)
		scores[f] = Float8GetDatum(row->fold_scores[f]);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int64GetDatum(row->model_id);
	nulls[1] = row->model_id == 0 ? 'n' : ' ';
	values[2] = Int32GetDatum(row->trial);
	values[3] = CStringGetTextDatum(row->algorithm);
	values[4] = JsonbPGetDatum(row->params);
	values[5] = CStringGetTextDatum(row->metric);
	values[6] = PointerGetDatum(construct_array(scores, row->nfolds, FLOAT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[7] = Float8GetDatum(row->mean);
	nulls[7] = isnan(row->mean) ? 'n' : ' ';
	values[8] = Float8GetDatum(row->std);
	nulls[8] = isnan(row->std) ? 'n' : ' ';
	values[9] = BoolGetDatum(row->best);
	values[10] = Float8GetDatum(row->seconds);
	catalog_begin(&cc);
	catalog_exec("INSERT INTO ml.trials (run_id, model_id, trial, algorithm, params, metric, "
				 "fold_scores, mean, std, best, seconds) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
				 11, types, values, nulls, false, SPI_OK_INSERT);
	catalog_end(&cc);
}

/*
 * CatalogBestModel returns the project's model with the best key metric on
 * its hold-out rows (the newest among equals), or 0.  Models measured on
 * their training rows (test_size 0) only count when no other model has
 * hold-out metrics.
 */
int64
CatalogBestModel(const ProjectInfo *project)
{
	CatalogCall cc;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	int64		id;

	values[0] = Int64GetDatum(project->id);
	values[1] = CStringGetTextDatum(MLTaskName(project->task));
	catalog_begin(&cc);
	catalog_exec("SELECT id FROM ml.models WHERE project_id = $1 "
				 "ORDER BY (metrics ->> 'evaluated_on' = 'test') IS TRUE DESC, "
				 "(metrics ->> ml.key_metric($2))::float8 DESC NULLS LAST, id DESC LIMIT 1",
				 2, types, values, NULL, true, SPI_OK_SELECT);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

/*
 * CatalogNewestModel returns the project's most recently trained model, or
 * 0.
 */
int64
CatalogNewestModel(int64 project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};
	int64		id;

	catalog_begin(&cc);
	catalog_exec("SELECT max(id) FROM ml.models WHERE project_id = $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

/*
 * CatalogPreviousModel returns the model that was live before the current
 * one (the newest deployment of another model), or 0.
 */
int64
CatalogPreviousModel(int64 project_id, int64 live_model_id)
{
	CatalogCall cc;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(project_id), Int64GetDatum(live_model_id)};
	int64		id;

	catalog_begin(&cc);
	catalog_exec("SELECT model_id FROM ml.deployments WHERE project_id = $1 AND model_id <> $2 "
				 "ORDER BY id DESC LIMIT 1",
				 2, types, values, NULL, true, SPI_OK_SELECT);
	id = catalog_int64_result();
	catalog_end(&cc);
	return id;
}

/*
 * CatalogDeleteProject removes a project with its models and deployments.
 */
void
CatalogDeleteProject(int64 project_id)
{
	CatalogCall cc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(project_id)};

	catalog_begin(&cc);
	catalog_exec("DELETE FROM ml.projects WHERE id = $1",
				 1, types, values, NULL, false, SPI_OK_DELETE);
	catalog_end(&cc);
}
