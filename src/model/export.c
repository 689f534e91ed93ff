/*-------------------------------------------------------------------------
 * src/model/export.c
 *		ml.export_model and ml.import_model: XGBoost models in and out of
 *		pgmaker, in XGBoost's own formats.
 *
 * Export writes the booster of an xgboost or random_forest model as
 * XGBoost's JSON model, which XGBoost in any language loads; the model
 * takes the transformed features (ml.features), which for numeric columns
 * under xgboost's default preprocessing are the raw values.
 *
 * Import registers a model trained elsewhere as a model of a project.
 * The document is checked by XgbDocumentCheck before XGBoost reads it
 * (XGBoost trusts its inputs, and a crafted model could crash the
 * backend).  The pipeline is the identity: one numeric input column per
 * model feature, no imputation (NULL reaches XGBoost as missing, as in
 * pgmaker's own xgboost models), no scaling.  The task comes from the
 * objective.  The model has no hold-out rows, hence no metrics
 * (evaluated_on "none"), and is not deployed: ml.deploy(project, id)
 * makes it live.  All writes happen in the calling transaction.
 *-------------------------------------------------------------------------
 */
#include "model/model.h"

#include <math.h>

#include "catalog/catalog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "predict/predict.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(ml_export_model);
PG_FUNCTION_INFO_V1(ml_import_model);

#define IMPORT_MAX_CLASSES 1000

/* What the features argument of ml.import_model says. */
typedef struct ImportSpec
{
	List	   *features;		/* of char *: input column names, in order */
	List	   *labels;			/* of char *, or NIL */
	char	   *target;			/* or NULL */
} ImportSpec;

/*
 * ml_export_model returns an xgboost or random_forest model as XGBoost's
 * JSON model.
 */
Datum
ml_export_model(PG_FUNCTION_ARGS)
{
	int64		model_id = PG_GETARG_INT64(0);
	Model	   *m = CacheModel(model_id);
	StringInfoData buf;
	bytea	   *result;
	int64		project_id;
	ProjectInfo project;

	/* the model's parameters leave the database: as for training */
	CatalogModelAlgorithm(model_id, &project_id);
	CatalogProjectById(project_id, &project);
	CatalogCheckAccess(&project, ML_ACCESS_TRAIN);

	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	if (!XgbModelSave(m->fitted, "json", &buf))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model %lld (%s) cannot be exported", (long long) model_id,
						m->fitted->spec->name),
				 errhint("Only xgboost and random_forest models can be exported, as XGBoost's JSON model.")));
	if (m->has_threshold)
		ereport(NOTICE,
				(errmsg("model %lld decides at threshold %g, which the exported booster does not hold",
						(long long) model_id, m->threshold),
				 errhint("Compare the booster's probability of class \"%s\" with %g yourself.",
						 m->labels[1], m->threshold)));
	result = (bytea *) buf.data;
	SET_VARSIZE(result, buf.len);
	PG_RETURN_BYTEA_P(result);
}

static void
import_null_argument(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be NULL", name)));
}

static void
features_shape_error(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("features must be a JSON array of column names, or an object with key \"features\""),
			 errdetail("%s", detail),
			 errhint("Example: '[\"age\", \"bmi\"]', or '{\"features\": [\"x1\", \"x2\"], \"labels\": [\"no\", \"yes\"], \"target\": \"y\"}'.")));
}

/* The strings of a jsonb array (numbers and booleans in their text form). */
static List *
jsonb_string_list(const JsonbValue *container, const char *what, bool allow_scalars)
{
	List	   *out = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (container->type != jbvBinary || !JsonContainerIsArray(container->val.binary.data) ||
		JsonContainerIsScalar(container->val.binary.data))
		features_shape_error(psprintf("%s is a JSON %s, not an array.", what,
									  JsonbValueTypeName(container)));
	it = JsonbIteratorInit(container->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvString && !(allow_scalars && (v.type == jbvNumeric || v.type == jbvBool)))
			features_shape_error(psprintf("An element of %s is a JSON %s, not a string.", what,
										  JsonbValueTypeName(&v)));
		out = lappend(out, JsonbValueToCString(&v));
	}
	return out;
}

/* Reads the features argument: an array of names, or an object. */
static void
import_parse_spec(Jsonb *json, ImportSpec *spec)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	bool		has_features = false;

	memset(spec, 0, sizeof(*spec));
	if (JB_ROOT_IS_SCALAR(json))
		features_shape_error("It is a JSON scalar.");
	if (JB_ROOT_IS_ARRAY(json))
	{
		JsonbValue	root;

		root.type = jbvBinary;
		root.val.binary.data = &json->root;
		root.val.binary.len = VARSIZE(json) - VARHDRSZ;
		spec->features = jsonb_string_list(&root, "features", false);
		return;
	}
	it = JsonbIteratorInit(&json->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok != WJB_VALUE)
			continue;
		else if (strcmp(key, "features") == 0)
		{
			spec->features = jsonb_string_list(&v, "\"features\"", false);
			has_features = true;
		}
		else if (strcmp(key, "labels") == 0)
			spec->labels = jsonb_string_list(&v, "\"labels\"", true);
		else if (strcmp(key, "target") == 0)
		{
			if (v.type != jbvString)
				features_shape_error(psprintf("\"target\" is a JSON %s, not a string.",
											  JsonbValueTypeName(&v)));
			spec->target = JsonbValueToCString(&v);
		}
		else
			features_shape_error(psprintf("The object has an unknown key \"%s\"; its keys are \"features\", \"labels\" and \"target\".",
										  key));
	}
	if (!has_features)
		features_shape_error("The object has no key \"features\".");
}

/*
 * Splits a feature name into its source column and array element: "x[3]"
 * is element 3 of column x, as pgmaker names array elements; other names
 * are scalar columns (element 0).
 */
static void
split_feature_name(const char *name, char **source, int *element)
{
	size_t		len = strlen(name);
	const char *open = strrchr(name, '[');
	const char *digits;
	size_t		ndigits;

	*source = pstrdup(name);
	*element = 0;
	if (len < 4 || name[len - 1] != ']' || open == NULL || open == name)
		return;
	digits = open + 1;
	ndigits = name + len - 1 - digits;
	if (ndigits < 1 || ndigits > 6 || digits[0] == '0' ||
		strspn(digits, "0123456789") != ndigits)
		return;
	*element = atoi(digits);
	(*source)[open - name] = '\0';
}

/* The identity pipeline over the named input columns. */
static Pipeline *
import_pipeline(List *features)
{
	Pipeline   *pl = palloc0(sizeof(Pipeline));
	ListCell   *lc;
	int			i = 0;
	bool		valid;

	pl->ncolumns = list_length(features);
	pl->columns = palloc0(sizeof(PipelineColumn) * Max(pl->ncolumns, 1));
	foreach(lc, features)
	{
		const char *name = lfirst(lc);
		PipelineColumn *pc = &pl->columns[i];

		if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature name \"%s\" must have 1 to %d bytes", name, NAMEDATALEN - 1)));
		for (int j = 0; j < i; j++)
			if (strcmp(pl->columns[j].name, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is named twice in features", name)));
		pc->name = pstrdup(name);
		split_feature_name(name, &pc->source, &pc->element);

		/*
		 * The elements of an array column are 1, 2, ... in a row, and its
		 * name is used by no other feature.
		 */
		if (i > 0 && strcmp(pl->columns[i - 1].source, pc->source) == 0)
			valid = pc->element > 1 && pl->columns[i - 1].element == pc->element - 1;
		else
		{
			valid = pc->element <= 1;
			for (int j = 0; j < i && valid; j++)
				valid = strcmp(pl->columns[j].source, pc->source) != 0;
		}
		if (!valid)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" does not continue the elements of column \"%s\"",
							name, pc->source),
					 errhint("Name the elements of an array column \"%s[1]\", \"%s[2]\", ... in a row, and no other feature \"%s\".",
							 pc->source, pc->source, pc->source)));
		pc->categorical = false;
		pc->value_type = FLOAT8OID;
		pc->impute = IMPUTE_NONE;
		pc->fill = NAN;
		pc->scale = SCALE_NONE;
		pc->center = 0.0;
		pc->scale_by = 1.0;
		pc->fill_category = -1;
		pc->raw_mean = NAN;
		pc->raw_std = NAN;
		pc->null_fraction = NAN;
		i++;
	}
	PipelineLayout(pl);
	return pl;
}

/* The task and number of classes an objective means. */
static MLTask
import_task(const XgbDocument *doc, int *nclasses)
{
	const char *obj = doc->objective;

	*nclasses = 0;
	if (strncmp(obj, "reg:", 4) == 0 || strncmp(obj, "count:", 6) == 0 ||
		strcmp(obj, "binary:logistic") == 0)
	{
		if (doc->num_class > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the XGBoost model has objective \"%s\" but %d classes", obj,
							doc->num_class)));
		if (obj[0] == 'b')
		{
			*nclasses = 2;
			return ML_TASK_CLASSIFICATION;
		}
		return ML_TASK_REGRESSION;
	}
	if (strcmp(obj, "multi:softprob") == 0)
	{
		if (doc->num_class < 3)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the XGBoost model has objective multi:softprob with %d classes",
							doc->num_class),
					 errhint("Import a two-class model trained with binary:logistic.")));
		if (doc->objective_num_class >= 0 && doc->objective_num_class != doc->num_class)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the XGBoost model has %d classes but its objective has %d",
							doc->num_class, doc->objective_num_class)));
		*nclasses = doc->num_class;
		return ML_TASK_CLASSIFICATION;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("objective \"%s\" cannot be imported", obj),
			 errhint("Import models trained with a reg:* or count:* objective (regression), binary:logistic or multi:softprob (classification).")));
	return ML_TASK_REGRESSION;	/* keep the compiler quiet */
}

/* Whether s is a finite number (or a boolean), and its value. */
static bool
label_number(const char *s, double *out)
{
	char	   *end;

	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
	{
		*out = s[0] == 't';
		return true;
	}
	errno = 0;
	*out = strtod(s, &end);
	return *s != '\0' && *end == '\0' && errno == 0 && isfinite(*out);
}

/*
 * Sets the model's labels: the given ones or "0", "1", ...; numeric as the
 * project's other models are, else when every label is a number.
 */
static void
import_labels(Model *model, List *given, const Model *reference)
{
	int			k = model->nclasses;
	bool		numeric = true;

	if (given != NIL && list_length(given) != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("labels has %d entries but the model has %d classes", list_length(given), k)));
	model->labels = palloc(sizeof(char *) * k);
	model->label_values = palloc(sizeof(double) * k);
	for (int c = 0; c < k; c++)
	{
		model->labels[c] = given ? pstrdup(list_nth(given, c)) : psprintf("%d", c);
		for (int d = 0; d < c; d++)
			if (strcmp(model->labels[d], model->labels[c]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("label \"%s\" is named twice in labels", model->labels[c])));
		numeric &= label_number(model->labels[c], &model->label_values[c]);
	}
	if (reference)
		numeric = reference->labels_numeric && numeric;
	model->labels_numeric = numeric;
	if (!numeric)
	{
		pfree(model->label_values);
		model->label_values = NULL;
	}
}

/* The labels of a model as "{a,b,c}", for messages. */
static char *
labels_text(const Model *m)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (int c = 0; c < m->nclasses; c++)
		appendStringInfo(&s, "%s%s", c ? "," : "", m->labels[c]);
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* An imported classification model must have the project's labels. */
static void
import_check_labels(const Model *model, const Model *reference, const ProjectInfo *project)
{
	bool		same = reference->nclasses == model->nclasses;

	for (int c = 0; same && c < model->nclasses; c++)
	{
		bool		found = false;

		for (int d = 0; d < reference->nclasses && !found; d++)
			found = strcmp(model->labels[c], reference->labels[d]) == 0;
		same = found;
	}
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the labels of the imported model differ from those of project \"%s\"",
						project->name),
				 errdetail("The project's model %lld has labels %s; the imported model has %s.",
						   (long long) reference->id, labels_text(reference), labels_text(model)),
				 errhint("Give the model's labels in its class order under \"labels\" in features, or import into another project.")));
}

/* The model's own feature names, if it has any, must be the ones given. */
static void
import_check_feature_names(const XgbDocument *doc, List *features)
{
	if (doc->feature_names == NIL)
		return;
	for (int j = 0; j < list_length(features); j++)
	{
		const char *mine = list_nth(features, j);
		const char *theirs = j < list_length(doc->feature_names) ?
			list_nth(doc->feature_names, j) : NULL;

		if (theirs == NULL || strcmp(mine, theirs) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features do not match the feature names stored in the XGBoost model"),
					 errdetail("Feature %d is \"%s\" in features but \"%s\" in the model.", j + 1,
							   mine, theirs ? theirs : "(none)"),
					 errhint("List the input columns in the model's feature order, with the model's names.")));
	}
}

/*
 * The bytes XGBoost reads.  Its JSON reader takes what it writes, which
 * has no whitespace: it tells JSON from UBJSON by the first two bytes and
 * fails on some whitespace inside arrays.  So a JSON document, already
 * parsed by XgbDocumentCheck, is passed without whitespace between its
 * tokens.
 */
static const char *
import_xgboost_bytes(const char *data, Size len, bool json, Size *outlen)
{
	char	   *copy;
	Size		n = 0;
	bool		in_string = false;

	*outlen = len;
	if (!json)
		return data;
	copy = palloc_extended(len + 1, MCXT_ALLOC_HUGE);
	for (Size i = 0; i < len; i++)
	{
		char		c = data[i];

		if (in_string)
		{
			copy[n++] = c;
			if (c == '\\' && i + 1 < len)
				copy[n++] = data[++i];
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
		{
			in_string = true;
			copy[n++] = c;
		}
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			copy[n++] = c;
	}
	*outlen = n;
	return copy;
}

/* The import itself; allocations go to the current (throwaway) context. */
static int64
import_model(const char *project_name, const char *format, bytea *data, Jsonb *features_json)
{
	bool		json;
	ImportSpec	spec;
	ProjectInfo project;
	bool		project_exists;
	XgbDocument doc;
	MLTask		task;
	int			nclasses;
	int			nfeatures;
	int64		reference_id = 0;
	Model	   *reference = NULL;
	Model		model;
	AlgoModel	fitted;
	const char *bytes;
	Size		nbytes;
	ModelRow	row;
	int64		model_id;

	CatalogCheckProjectName(project_name);
	if (strcmp(format, "xgboost_json") == 0)
		json = true;
	else if (strcmp(format, "xgboost_ubj") == 0)
		json = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown model format \"%s\"", format),
				 errhint("Formats are xgboost_json (XGBoost's JSON model) and xgboost_ubj (its UBJSON model).")));
	import_parse_spec(features_json, &spec);
	if (spec.features == NIL)
		features_shape_error("It names no columns.");

	project_exists = CatalogFindProject(project_name, &project);
	if (project_exists)
		CatalogCheckAccess(&project, ML_ACCESS_TRAIN);

	/* the document, checked before XGBoost reads it */
	XgbDocumentCheck(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), json, &doc);
	task = import_task(&doc, &nclasses);
	if (task == ML_TASK_REGRESSION && spec.labels != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("labels are for classification, but the model does regression (objective \"%s\")",
						doc.objective)));
	if (list_length(spec.features) != doc.num_feature)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features has %d columns but the model has %d features",
						list_length(spec.features), doc.num_feature),
				 errhint("Name one input column per model feature, in the model's feature order.")));
	import_check_feature_names(&doc, spec.features);
	if (spec.target)
	{
		ListCell   *lc;

		foreach(lc, spec.features)
			if (strcmp(lfirst(lc), spec.target) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the target column \"%s\" cannot be a feature", spec.target)));
	}

	/* the project's task, target and labels */
	if (project_exists)
	{
		if (project.task != task)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("project \"%s\" does %s, not %s", project.name,
							MLTaskName(project.task), MLTaskName(task)),
					 errhint("A project's task is fixed by its first model; import into another project.")));
		if (spec.target && (project.target == NULL || strcmp(project.target, spec.target) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("project \"%s\" predicts \"%s\", not \"%s\"", project.name,
							project.target ? project.target : "(no target)", spec.target)));
		reference_id = CatalogLiveModelId(project.id);
		if (reference_id == 0)
			reference_id = CatalogNewestModel(project.id);
		if (reference_id != 0 && task == ML_TASK_CLASSIFICATION)
			reference = CacheModel(reference_id);
	}

	memset(&model, 0, sizeof(model));
	model.task = task;
	model.nclasses = nclasses;
	if (task == ML_TASK_CLASSIFICATION)
	{
		import_labels(&model, spec.labels, reference);
		if (reference)
			import_check_labels(&model, reference, &project);
	}
	model.pipeline = import_pipeline(spec.features);

	/* XGBoost reads it */
	memset(&fitted, 0, sizeof(fitted));
	fitted.spec = &xgboost_algo;
	fitted.task = task;
	fitted.nclasses = nclasses;
	bytes = import_xgboost_bytes(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), json, &nbytes);
	nfeatures = XgbModelLoad(&fitted, bytes, nbytes);
	if (nfeatures != model.pipeline->nfeatures)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features has %d columns but the model has %d features",
						model.pipeline->nfeatures, nfeatures)));
	fitted.p = nfeatures;
	model.fitted = &fitted;

	/* store */
	if (!project_exists)
	{
		project.id = CatalogCreateProject(project_name, task, spec.target, &project.owner);
		project.name = pstrdup(project_name);
	}
	memset(&row, 0, sizeof(row));
	row.project_id = project.id;
	row.algorithm = xgboost_algo.name;
	row.hyperparams = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	row.preprocess = row.hyperparams;
	row.features = PipelineDescribe(model.pipeline);
	row.metrics = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													 CStringGetDatum("{\"evaluated_on\": \"none\"}")));
	row.n_train = 0;
	row.n_test = 0;
	row.fit_seconds = 0.0;
	row.blob = ModelSerialize(&model);
	/* the blob must read back before it is stored */
	ModelDeserialize(row.blob, 0);
	model_id = CatalogInsertModel(&row);

	ereport(NOTICE,
			(errmsg("model %lld of project \"%s\" is imported but not deployed; it has no hold-out rows, so no metrics",
					(long long) model_id, project.name),
			 errhint("Deploy it with ml.deploy('%s', %lld).", project.name, (long long) model_id)));
	return model_id;
}

/*
 * ml_import_model registers an XGBoost model trained elsewhere as a model
 * of a project and returns its id.
 */
Datum
ml_import_model(PG_FUNCTION_ARGS)
{
	MemoryContext import_cxt;
	MemoryContext old;
	int64		model_id;

	if (PG_ARGISNULL(0))
		import_null_argument("project");
	if (PG_ARGISNULL(1))
		import_null_argument("format");
	if (PG_ARGISNULL(2))
		import_null_argument("data");
	if (PG_ARGISNULL(3))
		import_null_argument("features");

	import_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker import",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(import_cxt);
	model_id = import_model(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							text_to_cstring(PG_GETARG_TEXT_PP(1)),
							PG_GETARG_BYTEA_PP(2), PG_GETARG_JSONB_P(3));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(import_cxt);
	PG_RETURN_INT64(model_id);
}
