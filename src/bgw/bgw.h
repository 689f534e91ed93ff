/*-------------------------------------------------------------------------
 * src/bgw/bgw.h
 *		pgmaker's background workers: a launcher that polls ml.jobs and
 *		ml.schedules, and one dynamic worker per part of a job.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_BGW_H
#define PGMAKER_BGW_H

#include "postgres.h"

/* What the launcher hands a job worker, in bgw_extra. */
typedef struct JobWorkerArgs
{
	Oid			dboid;
	int32		part;
	int64		job_id;
} JobWorkerArgs;

/* true in processes of a server that preloaded pgmaker */
extern bool BgwPreloaded;

/* launcher.c */
extern void BgwLauncherRegister(void);
extern void BgwShmemRegister(void);
extern void BgwWakeLauncher(void);
extern PGDLLEXPORT void MLLauncherMain(Datum arg);

/* worker.c */
extern PGDLLEXPORT void MLJobWorkerMain(Datum arg);

/* src/http/alerts.c: posts pending alert deliveries, then exits */
extern PGDLLEXPORT void MLAlertSenderMain(Datum arg);

/* jobs.c */
typedef struct RoleSwitch
{
	Oid			save_uid;
	int			save_ctx;
	int			guc_nest;
} RoleSwitch;

/* the search_path of statements on the extension's own tables */
#define BGW_CATALOG_PATH "pg_catalog, pg_temp"

extern void BgwXactBegin(void);
extern void BgwXactCommit(bool force_stats);
extern void BgwRun(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, int expected);
extern Oid	BgwExtensionOwner(void);
extern void BgwWakeLauncherAtCommit(void);
extern void BgwAsRole(Oid role, const char *search_path, RoleSwitch *rs);
extern void BgwRestoreRole(const RoleSwitch *rs);

#endif							/* PGMAKER_BGW_H */
