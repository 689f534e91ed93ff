/*-------------------------------------------------------------------------
 * src/catalog/catalog.h
 *		Lookups and writes of ml.projects, ml.models and ml.deployments.
 *
 * Catalog statements run as the owner of the catalog tables, so that a
 * role allowed to train can write models without write access to the
 * tables themselves; who may change a project is checked here, against
 * the project's owner role.  Sources are never read through this module:
 * they run with the caller's rights.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_CATALOG_H
#define PGMAKER_CATALOG_H

#include "pgmaker.h"

#include "utils/jsonb.h"

typedef struct ProjectInfo
{
	int64		id;
	char	   *name;
	MLTask		task;
	char	   *target;			/* NULL for unsupervised tasks */
	Oid			owner;
} ProjectInfo;

typedef struct ModelRow
{
	int64		project_id;
	int64		run_id;			/* 0: not from a search or autopilot run */
	const char *algorithm;
	Jsonb	   *hyperparams;
	Jsonb	   *preprocess;
	Jsonb	   *features;
	Jsonb	   *metrics;
	Jsonb	   *train_metrics;
	Jsonb	   *baseline;
	Jsonb	   *curves;			/* evaluation plots' points, or NULL */
	int64		n_train;
	int64		n_test;
	double		fit_seconds;
	bytea	   *blob;
} ModelRow;

extern void CatalogCheckProjectName(const char *name);
extern bool CatalogFindProject(const char *name, ProjectInfo *out);
extern void CatalogRequireProject(const char *name, ProjectInfo *out);
extern void CatalogCheckOwner(const ProjectInfo *project);

/*
 * What a role may do with a project, in increasing order: each level
 * includes the ones before it.  Members of the owner role, of ml_admin
 * and superusers have every level; other roles have what ml.grant gave
 * them (ml.project_grants).
 */
typedef enum MLAccess
{
	ML_ACCESS_PREDICT = 1,		/* predict, explain, read the catalog rows */
	ML_ACCESS_TRAIN,			/* train and import models, export them */
	ML_ACCESS_DEPLOY,			/* deploy, roll back, promote when training */
	ML_ACCESS_OWN				/* drop, grant, capture, monitor */
} MLAccess;

/* A project's owner and grants, as the model cache keeps them. */
typedef struct ProjectAccess
{
	int64		project_id;
	char		name[NAMEDATALEN];
	Oid			owner;
	int			ngrants;
	Oid		   *grantees;
	MLAccess   *levels;
} ProjectAccess;

extern const char *MLAccessName(MLAccess level);
extern bool CatalogOwns(Oid user, Oid owner);
extern void CatalogLoadAccess(int64 project_id, ProjectAccess *out);
extern bool CatalogAccessAllows(const ProjectAccess *access, MLAccess need);
extern void CatalogRequireAccess(const ProjectAccess *access, MLAccess need);
extern void CatalogCheckAccess(const ProjectInfo *project, MLAccess need);
extern bool CatalogMayAccess(const ProjectInfo *project, MLAccess need);
extern void CatalogSetGrant(const ProjectInfo *project, Oid grantee, MLAccess level);
extern bool CatalogDeleteGrant(const ProjectInfo *project, Oid grantee);
extern int64 CatalogCreateProject(const char *name, MLTask task, const char *target, Oid *owner);
extern int64 CatalogInsertModel(const ModelRow *row);

/* A promotion decision of ml.train (ml.promotions). */
typedef struct PromotionRow
{
	int64		project_id;
	int64		model_id;
	int64		live_model_id;	/* 0: none */
	const char *mode;			/* auto, always or never */
	bool		promoted;
	const char *metric;			/* the key metric, or NULL */
	double		score;			/* NaN: not measured */
	double		live_score;
	double		p_value;
	const char *reason;
} PromotionRow;

extern void CatalogInsertPromotion(const PromotionRow *row);

/* A search or autopilot run (ml.runs) and its trials (ml.trials). */
typedef struct RunRow
{
	int64		project_id;
	const char *kind;			/* search or autopilot */
	const char *strategy;		/* grid, random or auto */
	const char *metric;
	int			folds;
	double		max_seconds;	/* 0: no budget */
	int			trials_planned;
	int			trials_run;
	bool		stopped_by_time;
} RunRow;

typedef struct TrialRow
{
	int64		model_id;		/* 0: none */
	int			trial;
	const char *algorithm;
	Jsonb	   *params;
	const char *metric;
	int			nfolds;
	const double *fold_scores;
	double		mean;			/* NaN: stored as NULL */
	double		std;
	bool		best;
	double		seconds;
} TrialRow;

extern int64 CatalogInsertRun(const RunRow *row);
extern void CatalogFinishRun(int64 run_id, int64 model_id, Jsonb *report, double seconds);
extern void CatalogInsertTrial(int64 run_id, const TrialRow *row);
extern void CatalogInsertTrainingLog(int64 model_id, int n, const int32 *iterations,
									 Jsonb **metrics);
extern int64 CatalogLiveModelId(int64 project_id);
extern bytea *CatalogModelBlob(int64 model_id, int64 *project_id);
extern double CatalogCaptureRate(int64 project_id);
extern void CatalogInsertDebugEvents(int64 model_id, Jsonb *events, bool alert);
extern void CatalogProjectById(int64 project_id, ProjectInfo *out);
extern void CatalogInsertDeployment(int64 project_id, int64 model_id,
									const char *strategy, const char *reason);
extern int64 CatalogBestModel(const ProjectInfo *project);
extern int64 CatalogNewestModel(int64 project_id);
extern int64 CatalogPreviousModel(int64 project_id, int64 live_model_id);
extern char *CatalogModelAlgorithm(int64 model_id, int64 *project_id);
extern void CatalogDeleteProject(int64 project_id);
extern Oid	CatalogRelid(const char *relname);
extern Oid	CatalogOwner(void);

#endif							/* PGMAKER_CATALOG_H */
