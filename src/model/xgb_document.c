/*-------------------------------------------------------------------------
 * src/model/xgb_document.c
 *		Checks a model document that XGBoost wrote (JSON or UBJSON) before
 *		XGBoost itself reads it, for ml.import_model.
 *
 * Design: XGBoost trusts its model files.  Its UBJSON reader reads without
 * bounds checks, and a tree whose child, parent or feature indexes point
 * outside their arrays makes prediction read out of bounds: a crafted
 * model would crash the backend.  So every document is read here first,
 * strictly, and only one that passes reaches XGBoost:
 *
 * - the syntax: JSON through PostgreSQL's own parser; UBJSON through the
 *   reader below, which accepts only what XGBoost writes (length-prefixed
 *   keys and strings, typed and counted arrays) and checks every length
 *   against the bytes left;
 * - the layout: no object has a key twice (XGBoost would keep one of
 *   them, perhaps not the one checked), nesting is shallow;
 * - the trees: every node array has num_nodes entries; a node is a leaf
 *   (both children -1) or has two distinct children in range whose parent
 *   is that node, splitting on a feature below num_feature; the parent
 *   links lead to the root without a cycle; no categorical splits; tree
 *   ids are 0..num_trees-1 once each; tree_info, and DART's weight_drop,
 *   have one entry per tree;
 * - the learner: its number of features, classes and targets, its
 *   objective and its booster (gbtree or dart).
 *
 * Walking: both readers report the same events (begin and end of an
 * object or array, a key, a scalar) to one walker, which tracks a stack of
 * frames; each frame has a role (where it sits in the model: the learner,
 * a tree, a tree's node array, ...) derived from its parent's role and
 * key, so no path strings are built.  Values outside the parts checked
 * have role OTHER and are only counted through.
 *-------------------------------------------------------------------------
 */
#include "model/model.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#define DOC_MAX_DEPTH 32
#define DOC_MAX_FEATURES 1000000
#define DOC_MAX_CLASSES 1000

typedef enum DocRole
{
	R_OTHER,
	R_ROOT,
	R_LEARNER,
	R_OBJECTIVE,
	R_SOFTMAX_PARAM,
	R_MODEL_PARAM,				/* learner.learner_model_param */
	R_FEATURE_NAMES,
	R_FEATURE_TYPES,
	R_BOOSTER,					/* learner.gradient_booster */
	R_DART_GBTREE,				/* gradient_booster.gbtree (dart) */
	R_MODEL,					/* the gbtree model */
	R_GBTREE_PARAM,
	R_TREES,
	R_TREE,
	R_TREE_PARAM,
	R_NODE_ARRAY,				/* one of a tree's per-node arrays */
	R_TREE_INFO,
	R_WEIGHT_DROP
} DocRole;

/* A tree's per-node arrays; the first NODE_INT_FIELDS are kept. */
typedef enum NodeField
{
	NF_LEFT,
	NF_RIGHT,
	NF_PARENT,
	NF_SPLIT_INDEX,
	NODE_INT_FIELDS,
	NF_SPLIT_TYPE = NODE_INT_FIELDS,
	NF_SPLIT_CONDITION,
	NF_DEFAULT_LEFT,
	NF_LOSS_CHANGE,
	NF_SUM_HESSIAN,
	NF_BASE_WEIGHT,
	NF_CATEGORIES,
	NF_CATEGORIES_NODES,
	NF_CATEGORIES_SEGMENTS,
	NF_CATEGORIES_SIZES,
	NODE_FIELDS
} NodeField;

static const char *const node_field_names[NODE_FIELDS] = {
	"left_children", "right_children", "parents", "split_indices",
	"split_type", "split_conditions", "default_left", "loss_changes",
	"sum_hessian", "base_weights", "categories", "categories_nodes",
	"categories_segments", "categories_sizes"
};

/* the categorical fields must be empty; the others have num_nodes entries */
#define NODE_FIELD_IS_CATEGORICAL(f) ((f) >= NF_CATEGORIES)

typedef enum DocValueKind
{
	V_STRING,
	V_INT,
	V_FLOAT,					/* or an integer beyond int64 */
	V_BOOL,
	V_NULL
} DocValueKind;

typedef struct DocValue
{
	DocValueKind kind;
	int64		i;
	const char *s;				/* V_STRING, zero-terminated */
} DocValue;

typedef struct DocFrame
{
	DocRole		role;
	bool		is_array;
	char	   *key;			/* object: the key of the value that follows */
	List	   *keys;			/* object with a role: the keys seen */
	int			field;			/* R_NODE_ARRAY: its NodeField */
} DocFrame;

/* A growing array of int32. */
typedef struct IntList
{
	int32	   *v;
	int64		n;
	int64		cap;
} IntList;

typedef struct DocWalk
{
	const char *format;			/* for messages */
	int			depth;
	DocFrame	frames[DOC_MAX_DEPTH];

	/* learner */
	char	   *objective;
	int			num_feature;
	int			num_class;
	int			num_target;
	int			softmax_num_class;
	char	   *booster;
	List	   *feature_names;
	bool		categorical_features;
	int			models;			/* gbtree models seen */
	bool		model_in_dart;
	int			num_trees;
	int			num_parallel_tree;
	int64		ntrees_seen;
	IntList		tree_ids;
	IntList		tree_info;
	int64		nweight_drop;
	bool		trees_seen;
	bool		tree_info_seen;
	bool		weight_drop_seen;
	int32		max_split_feature;

	/* the tree being read */
	int64		tree_id;
	int			num_nodes;
	int64		field_count[NODE_FIELDS];
	bool		field_seen[NODE_FIELDS];
	IntList		node[NODE_INT_FIELDS];
	bool		split_type_categorical;
} DocWalk;

static void doc_error(DocWalk *w, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();

/* Raises the error for a document that is not a model pgmaker reads. */
static void
doc_error(DocWalk *w, const char *fmt,...)
{
	va_list		args;
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("data is not a valid XGBoost model in format %s", w->format),
			 errdetail("%s", detail.data),
			 errhint("Pass the bytes that XGBoost's save_model or save_raw wrote, unchanged.")));
}

static void
int_list_add(IntList *l, int32 v)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 64;
		if (l->v)
			l->v = repalloc_huge(l->v, sizeof(int32) * l->cap);
		else
			l->v = palloc_extended(sizeof(int32) * l->cap, MCXT_ALLOC_HUGE);
	}
	l->v[l->n++] = v;
}

/* An integer written as a string of digits, as XGBoost writes parameters. */
static int
doc_param_int(DocWalk *w, const DocValue *v, const char *name, int max)
{
	int64		n = 0;

	if (v->kind != V_STRING || v->s[0] == '\0')
		doc_error(w, "Parameter %s is not a string of digits.", name);
	for (const char *c = v->s; *c; c++)
	{
		if (*c < '0' || *c > '9')
			doc_error(w, "Parameter %s is \"%s\", not a string of digits.", name, v->s);
		n = n * 10 + (*c - '0');
		if (n > max)
			doc_error(w, "Parameter %s is larger than %d.", name, max);
	}
	return (int) n;
}

/* An integer in [min, max]; what names it in a sentence. */
static int32
doc_int32(DocWalk *w, const DocValue *v, const char *what, int64 min, int64 max)
{
	if (v->kind != V_INT)
		doc_error(w, "%s is not an integer.", what);
	if (v->i < min || v->i > max)
		doc_error(w, "%s is out of range (" INT64_FORMAT ").", what, v->i);
	return (int32) v->i;
}

/* ---------- the walker ---------- */

/* The role of the value that comes next inside frame f. */
static DocRole
doc_child_role(const DocFrame *f, int *field)
{
	const char *k = f->key;

	switch (f->role)
	{
		case R_ROOT:
			return strcmp(k, "learner") == 0 ? R_LEARNER : R_OTHER;
		case R_LEARNER:
			if (strcmp(k, "objective") == 0)
				return R_OBJECTIVE;
			if (strcmp(k, "learner_model_param") == 0)
				return R_MODEL_PARAM;
			if (strcmp(k, "feature_names") == 0)
				return R_FEATURE_NAMES;
			if (strcmp(k, "feature_types") == 0)
				return R_FEATURE_TYPES;
			if (strcmp(k, "gradient_booster") == 0)
				return R_BOOSTER;
			return R_OTHER;
		case R_OBJECTIVE:
			return strcmp(k, "softmax_multiclass_param") == 0 ? R_SOFTMAX_PARAM : R_OTHER;
		case R_BOOSTER:
			if (strcmp(k, "model") == 0)
				return R_MODEL;
			if (strcmp(k, "gbtree") == 0)
				return R_DART_GBTREE;
			if (strcmp(k, "weight_drop") == 0)
				return R_WEIGHT_DROP;
			return R_OTHER;
		case R_DART_GBTREE:
			return strcmp(k, "model") == 0 ? R_MODEL : R_OTHER;
		case R_MODEL:
			if (strcmp(k, "gbtree_model_param") == 0)
				return R_GBTREE_PARAM;
			if (strcmp(k, "trees") == 0)
				return R_TREES;
			if (strcmp(k, "tree_info") == 0)
				return R_TREE_INFO;
			return R_OTHER;
		case R_TREES:
			return R_TREE;
		case R_TREE:
			if (strcmp(k, "tree_param") == 0)
				return R_TREE_PARAM;
			for (int i = 0; i < NODE_FIELDS; i++)
				if (strcmp(k, node_field_names[i]) == 0)
				{
					*field = i;
					return R_NODE_ARRAY;
				}
			return R_OTHER;
		default:
			return R_OTHER;
	}
}

static bool
role_is_array(DocRole role)
{
	return role == R_FEATURE_NAMES || role == R_FEATURE_TYPES || role == R_TREES ||
		role == R_NODE_ARRAY || role == R_TREE_INFO || role == R_WEIGHT_DROP;
}

/* Names the value that comes next inside parent, to start a sentence. */
static const char *
frame_name(const DocFrame *parent)
{
	return parent->is_array ? "An array element" : psprintf("The value of \"%s\"", parent->key);
}

static void
tree_begin(DocWalk *w)
{
	w->tree_id = -1;
	w->num_nodes = -1;
	memset(w->field_count, 0, sizeof(w->field_count));
	memset(w->field_seen, 0, sizeof(w->field_seen));
	for (int f = 0; f < NODE_INT_FIELDS; f++)
		w->node[f].n = 0;
}

/* Checks the tree just read: its arrays and the links between its nodes. */
static void
tree_end(DocWalk *w)
{
	int64		t = w->ntrees_seen;
	int			n = w->num_nodes;
	const int32 *left = w->node[NF_LEFT].v;
	const int32 *right = w->node[NF_RIGHT].v;
	const int32 *parent = w->node[NF_PARENT].v;
	const int32 *split = w->node[NF_SPLIT_INDEX].v;
	int8	   *state;

	if (w->tree_id < 0)
		doc_error(w, "Tree " INT64_FORMAT " has no id.", t);
	if (n < 1)
		doc_error(w, "Tree " INT64_FORMAT " has no tree_param.num_nodes.", t);
	for (int f = 0; f < NODE_FIELDS; f++)
	{
		if (NODE_FIELD_IS_CATEGORICAL(f))
		{
			if (w->field_count[f] > 0)
				w->split_type_categorical = true;
			continue;
		}
		if (!w->field_seen[f] || w->field_count[f] != n)
			doc_error(w, "Tree " INT64_FORMAT " has %d nodes but " INT64_FORMAT " entries in %s.",
					  t, n, w->field_seen[f] ? w->field_count[f] : 0, node_field_names[f]);
	}
	if (w->split_type_categorical)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the XGBoost model has categorical splits, which pgmaker cannot import"),
				 errhint("Train the model in XGBoost without enable_categorical, on numeric or one-hot columns.")));

	if (!(parent[0] == -1 || parent[0] == PG_INT32_MAX))
		doc_error(w, "The root of tree " INT64_FORMAT " has a parent.", t);
	for (int i = 0; i < n; i++)
	{
		/* a leaf has no children; its split index is unused */
		if (left[i] != -1 || right[i] != -1)
		{
			if (left[i] < 1 || left[i] >= n || right[i] < 1 || right[i] >= n ||
				left[i] == right[i])
				doc_error(w, "Node %d of tree " INT64_FORMAT " has a child out of range.", i, t);
			if (parent[left[i]] != i || parent[right[i]] != i)
				doc_error(w, "The children of node %d of tree " INT64_FORMAT " do not name it as their parent.",
						  i, t);
			w->max_split_feature = Max(w->max_split_feature, split[i]);
		}
		if (i > 0 && (parent[i] < 0 || parent[i] >= n))
			doc_error(w, "Node %d of tree " INT64_FORMAT " has a parent out of range.", i, t);
	}

	/* every parent chain reaches the root: 0 unknown, 1 on the walk, 2 done */
	state = palloc0(n);
	state[0] = 2;
	for (int i = 1; i < n; i++)
	{
		int			j = i;

		while (state[j] == 0)
		{
			state[j] = 1;
			j = parent[j];
		}
		if (state[j] == 1)
			doc_error(w, "The parent links of tree " INT64_FORMAT " form a cycle.", t);
		for (j = i; state[j] == 1; j = parent[j])
			state[j] = 2;
	}
	pfree(state);

	int_list_add(&w->tree_ids, (int32) w->tree_id);
	w->ntrees_seen++;
	CHECK_FOR_INTERRUPTS();
}

static void
doc_begin(DocWalk *w, bool is_array)
{
	DocFrame   *f;
	DocRole		role = R_ROOT;
	int			field = -1;

	if (w->depth == DOC_MAX_DEPTH)
		doc_error(w, "The document nests deeper than %d levels.", DOC_MAX_DEPTH);
	if (w->depth > 0)
	{
		DocFrame   *parent = &w->frames[w->depth - 1];

		role = doc_child_role(parent, &field);
		if (role != R_OTHER && role_is_array(role) != is_array)
			doc_error(w, "%s is %s, not %s.", frame_name(parent),
					  is_array ? "an array" : "an object", is_array ? "an object" : "an array");
		if (parent->role == R_NODE_ARRAY || parent->role == R_TREE_INFO ||
			parent->role == R_WEIGHT_DROP || parent->role == R_FEATURE_NAMES ||
			parent->role == R_FEATURE_TYPES)
			doc_error(w, "An array of numbers or names holds a container.");
	}
	else if (is_array)
		doc_error(w, "The document is an array, not an object.");

	switch (role)
	{
		case R_MODEL:
			if (++w->models > 1)
				doc_error(w, "The gradient booster holds more than one tree model.");
			w->model_in_dart = w->frames[w->depth - 1].role == R_DART_GBTREE;
			break;
		case R_TREES:
			w->trees_seen = true;
			break;
		case R_TREE_INFO:
			w->tree_info_seen = true;
			break;
		case R_WEIGHT_DROP:
			w->weight_drop_seen = true;
			break;
		case R_TREE:
			tree_begin(w);
			break;
		case R_NODE_ARRAY:
			w->field_seen[field] = true;
			break;
		default:
			break;
	}

	f = &w->frames[w->depth++];
	f->role = role;
	f->is_array = is_array;
	f->key = NULL;
	f->keys = NIL;
	f->field = field;
}

static void
doc_end(DocWalk *w)
{
	DocFrame   *f = &w->frames[--w->depth];

	if (f->role == R_TREE)
		tree_end(w);
	if (f->key)
		pfree(f->key);
	list_free_deep(f->keys);
}

static void
doc_key(DocWalk *w, const char *key)
{
	DocFrame   *f = &w->frames[w->depth - 1];
	ListCell   *lc;

	if (f->key)
		pfree(f->key);
	f->key = pstrdup(key);
	if (f->role == R_OTHER)
		return;
	foreach(lc, f->keys)
		if (strcmp(lfirst(lc), key) == 0)
			doc_error(w, "An object has the key \"%s\" twice.", key);
	f->keys = lappend(f->keys, f->key);
	f->key = pstrdup(key);
}

static void
node_value(DocWalk *w, int field, const DocValue *v)
{
	static const char *const what[NODE_INT_FIELDS + 1] = {
		"An entry of left_children", "An entry of right_children",
		"An entry of parents", "An entry of split_indices", "An entry of split_type"
	};

	w->field_count[field]++;
	switch (field)
	{
		case NF_LEFT:
		case NF_RIGHT:
		case NF_PARENT:
			int_list_add(&w->node[field], doc_int32(w, v, what[field], -1, PG_INT32_MAX));
			break;
		case NF_SPLIT_INDEX:
			int_list_add(&w->node[field], doc_int32(w, v, what[field], 0, PG_INT32_MAX));
			break;
		case NF_SPLIT_TYPE:
			if (doc_int32(w, v, what[field], 0, 255) != 0)
				w->split_type_categorical = true;
			break;
		default:
			break;
	}
}

static void
doc_scalar(DocWalk *w, const DocValue *v)
{
	DocFrame   *f;
	int			field = -1;
	DocRole		role;

	if (w->depth == 0)
		doc_error(w, "The document is a scalar, not an object.");
	f = &w->frames[w->depth - 1];
	role = doc_child_role(f, &field);
	if (role != R_OTHER)
		doc_error(w, "%s is a scalar, not %s.", frame_name(f),
				  role_is_array(role) ? "an array" : "an object");

	switch (f->role)
	{
		case R_OBJECTIVE:
			if (strcmp(f->key, "name") == 0)
			{
				if (v->kind != V_STRING)
					doc_error(w, "The objective's name is not a string.");
				w->objective = pstrdup(v->s);
			}
			break;
		case R_SOFTMAX_PARAM:
			if (strcmp(f->key, "num_class") == 0)
				w->softmax_num_class = doc_param_int(w, v, "num_class", DOC_MAX_CLASSES);
			break;
		case R_MODEL_PARAM:
			if (strcmp(f->key, "num_feature") == 0)
				w->num_feature = doc_param_int(w, v, "num_feature", DOC_MAX_FEATURES);
			else if (strcmp(f->key, "num_class") == 0)
				w->num_class = doc_param_int(w, v, "num_class", DOC_MAX_CLASSES);
			else if (strcmp(f->key, "num_target") == 0)
				w->num_target = doc_param_int(w, v, "num_target", PG_INT32_MAX);
			break;
		case R_BOOSTER:
			if (strcmp(f->key, "name") == 0)
			{
				if (v->kind != V_STRING)
					doc_error(w, "The gradient booster's name is not a string.");
				w->booster = pstrdup(v->s);
			}
			break;
		case R_GBTREE_PARAM:
			if (strcmp(f->key, "num_trees") == 0)
				w->num_trees = doc_param_int(w, v, "num_trees", PG_INT32_MAX);
			else if (strcmp(f->key, "num_parallel_tree") == 0)
				w->num_parallel_tree = doc_param_int(w, v, "num_parallel_tree", PG_INT32_MAX);
			else if (strcmp(f->key, "size_leaf_vector") == 0 &&
					 doc_param_int(w, v, "size_leaf_vector", PG_INT32_MAX) != 0)
				doc_error(w, "The trees have vector leaves (size_leaf_vector %s); pgmaker predicts with scalar leaves.",
						  v->s);
			break;
		case R_TREE:
			if (strcmp(f->key, "id") == 0)
				w->tree_id = doc_int32(w, v, "The id of a tree", 0, PG_INT32_MAX);
			break;
		case R_TREE_PARAM:
			if (strcmp(f->key, "num_nodes") == 0)
				w->num_nodes = doc_param_int(w, v, "num_nodes", PG_INT32_MAX);
			break;
		case R_NODE_ARRAY:
			node_value(w, f->field, v);
			break;
		case R_TREE_INFO:
			int_list_add(&w->tree_info, doc_int32(w, v, "An entry of tree_info", 0, PG_INT32_MAX));
			break;
		case R_WEIGHT_DROP:
			w->nweight_drop++;
			break;
		case R_FEATURE_NAMES:
			if (v->kind != V_STRING)
				doc_error(w, "A feature name is not a string.");
			w->feature_names = lappend(w->feature_names, pstrdup(v->s));
			break;
		case R_FEATURE_TYPES:
			if (v->kind != V_STRING)
				doc_error(w, "A feature type is not a string.");
			if (strcmp(v->s, "c") == 0)
				w->categorical_features = true;
			break;
		case R_TREES:
			doc_error(w, "A tree is not an object.");
			break;
		default:
			break;
	}
}

/* Checks what only the whole document shows, and fills *doc. */
static void
doc_finish(DocWalk *w, XgbDocument *doc)
{
	int			groups;
	bool	   *seen;

	if (w->objective == NULL)
		doc_error(w, "The document has no learner.objective.name.");
	if (w->num_feature < 0)
		doc_error(w, "The document has no learner.learner_model_param.num_feature.");
	if (w->num_feature == 0)
		doc_error(w, "The model has no features.");
	if (w->num_class < 0)
		doc_error(w, "The document has no learner.learner_model_param.num_class.");
	if (w->booster == NULL)
		doc_error(w, "The document has no learner.gradient_booster.name.");
	if (strcmp(w->booster, "gbtree") != 0 && strcmp(w->booster, "dart") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the XGBoost model uses booster \"%s\", which pgmaker cannot import", w->booster),
				 errhint("Import tree models: booster gbtree or dart.")));
	if (w->num_target > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the XGBoost model has %d targets, but pgmaker models have one", w->num_target)));
	if (w->categorical_features)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the XGBoost model has categorical features, which pgmaker cannot import"),
				 errhint("Train the model in XGBoost without enable_categorical, on numeric or one-hot columns.")));
	if (w->models == 0 || w->model_in_dart != (strcmp(w->booster, "dart") == 0))
		doc_error(w, "The %s booster has no tree model where XGBoost reads it.", w->booster);
	if (w->num_trees < 0 || !w->trees_seen || !w->tree_info_seen)
		doc_error(w, "The tree model lacks num_trees, trees or tree_info.");
	if (w->num_parallel_tree == 0)
		doc_error(w, "Parameter num_parallel_tree is 0.");
	if (w->ntrees_seen != w->num_trees || w->tree_info.n != w->num_trees)
		doc_error(w, "The model announces %d trees but holds " INT64_FORMAT " trees and " INT64_FORMAT " tree_info entries.",
				  w->num_trees, w->ntrees_seen, w->tree_info.n);
	if (strcmp(w->booster, "dart") == 0 &&
		(!w->weight_drop_seen || w->nweight_drop != w->num_trees))
		doc_error(w, "The DART model has %d trees but " INT64_FORMAT " weight_drop entries.",
				  w->num_trees, w->nweight_drop);

	seen = palloc0(sizeof(bool) * Max(w->num_trees, 1));
	for (int64 i = 0; i < w->tree_ids.n; i++)
	{
		int32		id = w->tree_ids.v[i];

		if (id >= w->num_trees || seen[id])
			doc_error(w, "Tree ids are not 0 to %d, each once.", w->num_trees - 1);
		seen[id] = true;
	}
	pfree(seen);
	groups = Max(w->num_class, 1);
	for (int64 i = 0; i < w->tree_info.n; i++)
		if (w->tree_info.v[i] >= groups)
			doc_error(w, "tree_info names output group %d of %d.", w->tree_info.v[i], groups);
	if (w->max_split_feature >= w->num_feature)
		doc_error(w, "A tree splits on feature %d of %d.", w->max_split_feature, w->num_feature);

	doc->objective = w->objective;
	doc->num_feature = w->num_feature;
	doc->num_class = w->num_class;
	doc->objective_num_class = w->softmax_num_class;
	doc->booster = w->booster;
	doc->num_trees = w->num_trees;
	doc->feature_names = w->feature_names;
}

/* ---------- JSON, through PostgreSQL's parser ---------- */

static void
json_object_start(void *state)
{
	doc_begin(state, false);
}

static void
json_array_start(void *state)
{
	doc_begin(state, true);
}

static void
json_container_end(void *state)
{
	doc_end(state);
}

static void
json_field(void *state, char *fname, bool isnull)
{
	doc_key(state, fname);
	pfree(fname);
}

static void
json_scalar(void *state, char *token, JsonTokenType type)
{
	DocValue	v = {0};

	switch (type)
	{
		case JSON_TOKEN_STRING:
			v.kind = V_STRING;
			v.s = token;
			break;
		case JSON_TOKEN_NUMBER:
			{
				char	   *end;

				/* XGBoost's reader: an integer unless it has a point or exponent */
				v.kind = V_FLOAT;
				if (strpbrk(token, ".eE") == NULL)
				{
					errno = 0;
					v.i = strtoi64(token, &end, 10);
					if (errno == 0 && *end == '\0')
						v.kind = V_INT;
				}
				break;
			}
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.kind = V_BOOL;
			v.i = type == JSON_TOKEN_TRUE;
			break;
		default:
			v.kind = V_NULL;
			break;
	}
	doc_scalar(state, &v);
	pfree(token);
}

static void
json_walk(DocWalk *w, const char *data, Size len)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType rc;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = w;
	sem.object_start = json_object_start;
	sem.object_end = json_container_end;
	sem.array_start = json_array_start;
	sem.array_end = json_container_end;
	sem.object_field_start = json_field;
	sem.scalar = json_scalar;
	lex = makeJsonLexContextCstringLen((char *) data, (int) len, GetDatabaseEncoding(), true);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		doc_error(w, "%s", json_errdetail(rc, lex));
}

/* ---------- UBJSON, as XGBoost writes it ---------- */

typedef struct UbjReader
{
	DocWalk    *w;
	const uint8 *p;
	const uint8 *end;
} UbjReader;

static void ubj_value(UbjReader *r, uint8 marker);

static void
ubj_need(UbjReader *r, int64 n)
{
	if (n < 0 || n > r->end - r->p)
		doc_error(r->w, "The document ends inside a value.");
}

static uint8
ubj_byte(UbjReader *r)
{
	ubj_need(r, 1);
	return *r->p++;
}

static uint64
ubj_bytes_be(UbjReader *r, int n)
{
	uint64		v = 0;

	ubj_need(r, n);
	for (int i = 0; i < n; i++)
		v = (v << 8) | r->p[i];
	r->p += n;
	return v;
}

/* A length: XGBoost writes them as 'L' and a big-endian int64. */
static int64
ubj_length(UbjReader *r)
{
	int64		n;

	if (ubj_byte(r) != 'L')
		doc_error(r->w, "A length is not written as an int64.");
	n = (int64) ubj_bytes_be(r, 8);
	if (n < 0)
		doc_error(r->w, "A length is negative.");
	return n;
}

static char *
ubj_string(UbjReader *r)
{
	int64		n = ubj_length(r);
	char	   *s;

	ubj_need(r, n);
	if (memchr(r->p, '\0', n) != NULL)
		doc_error(r->w, "A string holds a zero byte.");
	s = pnstrdup((const char *) r->p, n);
	r->p += n;
	return s;
}

/* A number of type marker m; false if m is not a number type. */
static bool
ubj_number(UbjReader *r, uint8 m, DocValue *v)
{
	v->kind = V_INT;
	switch (m)
	{
		case 'i':
			v->i = (int8) ubj_bytes_be(r, 1);
			return true;
		case 'U':
			v->i = (uint8) ubj_bytes_be(r, 1);
			return true;
		case 'I':
			v->i = (int16) ubj_bytes_be(r, 2);
			return true;
		case 'l':
			v->i = (int32) ubj_bytes_be(r, 4);
			return true;
		case 'L':
			v->i = (int64) ubj_bytes_be(r, 8);
			return true;
		case 'd':
			ubj_bytes_be(r, 4);
			v->kind = V_FLOAT;
			return true;
		case 'D':
			ubj_bytes_be(r, 8);
			v->kind = V_FLOAT;
			return true;
		default:
			return false;
	}
}

static void
ubj_array(UbjReader *r)
{
	doc_begin(r->w, true);
	if (r->end - r->p >= 1 && r->p[0] == '$')
	{
		/* typed: [$<type>#L<count>, then the values, no closing bracket */
		uint8		type;
		int			size;
		int64		n;

		r->p++;
		type = ubj_byte(r);
		size = type == 'd' || type == 'l' ? 4 : type == 'L' ? 8 : type == 'U' ? 1 : 0;
		if (size == 0)
			doc_error(r->w, "A typed array has element type '%c', which XGBoost does not read.", type);
		if (ubj_byte(r) != '#')
			doc_error(r->w, "A typed array has no count.");
		n = ubj_length(r);
		if (n > (r->end - r->p) / size)
			doc_error(r->w, "A typed array announces more values than the document holds.");
		for (int64 i = 0; i < n; i++)
		{
			DocValue	v = {0};

			ubj_number(r, type, &v);
			doc_scalar(r->w, &v);
		}
	}
	else if (r->end - r->p >= 1 && r->p[0] == '#')
	{
		/* counted: [#L<count>, then the values, no closing bracket */
		int64		n;

		r->p++;
		n = ubj_length(r);
		if (n > r->end - r->p)
			doc_error(r->w, "An array announces more values than the document holds.");
		for (int64 i = 0; i < n; i++)
			ubj_value(r, ubj_byte(r));
	}
	else
	{
		uint8		m;

		while ((m = ubj_byte(r)) != ']')
			ubj_value(r, m);
	}
	doc_end(r->w);
}

static void
ubj_object(UbjReader *r)
{
	doc_begin(r->w, false);
	for (;;)
	{
		char	   *key;

		ubj_need(r, 1);
		if (r->p[0] == '}')
			break;
		key = ubj_string(r);
		doc_key(r->w, key);
		pfree(key);
		ubj_value(r, ubj_byte(r));
	}
	r->p++;
	doc_end(r->w);
}

static void
ubj_value(UbjReader *r, uint8 marker)
{
	DocValue	v = {0};

	check_stack_depth();
	switch (marker)
	{
		case '{':
			ubj_object(r);
			return;
		case '[':
			ubj_array(r);
			return;
		case 'Z':
			v.kind = V_NULL;
			break;
		case 'T':
		case 'F':
			v.kind = V_BOOL;
			v.i = marker == 'T';
			break;
		case 'S':
			v.kind = V_STRING;
			v.s = ubj_string(r);
			doc_scalar(r->w, &v);
			pfree((char *) v.s);
			return;
		default:
			if (!ubj_number(r, marker, &v))
				doc_error(r->w, "A value has type marker 0x%02x, which XGBoost does not read.", marker);
			break;
	}
	doc_scalar(r->w, &v);
}

static void
ubj_walk(DocWalk *w, const char *data, Size len)
{
	UbjReader	r;

	r.w = w;
	r.p = (const uint8 *) data;
	r.end = r.p + len;
	if (ubj_byte(&r) != '{')
		doc_error(w, "The document does not start with an object.");
	ubj_object(&r);
	if (r.p != r.end)
		doc_error(w, "The document has bytes after its end.");
}

/*
 * XgbDocumentCheck reads an XGBoost model document (JSON when json, else
 * UBJSON) and fills *doc, or raises an error: 22023 for a document that
 * is malformed or inconsistent, 0A000 for a valid model that pgmaker
 * cannot use (linear booster, categorical splits, several targets).
 */
void
XgbDocumentCheck(const char *data, Size len, bool json, XgbDocument *doc)
{
	DocWalk    *w = palloc0(sizeof(DocWalk));

	w->format = json ? "xgboost_json" : "xgboost_ubj";
	w->num_feature = -1;
	w->num_class = -1;
	w->num_target = -1;
	w->softmax_num_class = -1;
	w->num_trees = -1;
	w->num_parallel_tree = -1;
	w->max_split_feature = -1;
	memset(doc, 0, sizeof(*doc));
	if (json)
		json_walk(w, data, len);
	else
		ubj_walk(w, data, len);
	doc_finish(w, doc);
}
