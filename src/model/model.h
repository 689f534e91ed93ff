/*-------------------------------------------------------------------------
 * src/model/model.h
 *		The model: pipeline, labels and fitted algorithm, and its blob.
 *
 * Blob layout: magic "PGMK", format version (uint16), algorithm name
 * (length-prefixed), payload length (uint32), CRC-32C of the payload
 * (uint32), then the payload: task, labels, pipeline, algorithm state.
 * Every read is bounds-checked; a truncated, foreign or tampered blob is
 * an ERROR with ERRCODE_DATA_CORRUPTED.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_MODEL_H
#define PGMAKER_MODEL_H

#include "pgmaker.h"

#include "algo/algo.h"
#include "lib/stringinfo.h"
#include "prep/prep.h"

#define MODEL_BLOB_VERSION 2

/* A bounds-checked reader over a blob's payload. */
typedef struct BlobReader
{
	StringInfoData buf;
	int64		model_id;		/* for error messages; 0 if unknown */
} BlobReader;

extern void BlobCorrupt(BlobReader *r, const char *what) pg_attribute_noreturn();
extern int32 BlobGetInt32(BlobReader *r);
extern int64 BlobGetInt64(BlobReader *r);
extern double BlobGetFloat8(BlobReader *r);
extern bool BlobGetBool(BlobReader *r);
extern int32 BlobGetCount(BlobReader *r, int32 max, int item_bytes,
						  const char *what);
extern char *BlobGetString(BlobReader *r);
extern void BlobGetFloat8Array(BlobReader *r, double *out, int64 n);
extern void BlobPutString(StringInfo buf, const char *s);
extern void BlobPutFloat8Array(StringInfo buf, const double *v, int64 n);

typedef struct Model
{
	int64		id;
	MLTask		task;
	Pipeline   *pipeline;
	int			nclasses;		/* classification: number of labels */
	char	  **labels;			/* sorted; text form */
	double	   *label_values;	/* labels_numeric: the labels as numbers */
	bool		labels_numeric;	/* numeric or boolean target */
	bool		has_threshold;	/* binary: a decision threshold is set */
	double		threshold;		/* class 1 when its output is at least this */
	AlgoModel  *fitted;
	double		capture_rate;	/* not in the blob: the project's, set by the cache */
} Model;

extern bytea *ModelSerialize(const Model *m);
extern Model *ModelDeserialize(bytea *blob, int64 model_id);
extern int	ModelOutputs(const Model *m);
extern void ModelPredictBlock(const Model *m, const double *X, int n, int ld,
							  double *out);
extern double ModelPredictValue(const Model *m, const double *outputs);
extern int	ModelPredictClass(const Model *m, const double *outputs);
extern double ModelThreshold(const Model *m);
extern int	ModelNearestCluster(const Model *m, const double *outputs);

/* What XgbDocumentCheck learns of an XGBoost model document. */
typedef struct XgbDocument
{
	char	   *objective;		/* learner.objective.name */
	int			num_feature;
	int			num_class;		/* 0 unless multiclass */
	int			objective_num_class;	/* the objective's own, or -1 */
	char	   *booster;		/* gbtree or dart */
	int			num_trees;
	List	   *feature_names;	/* of char *; NIL when the model has none */
} XgbDocument;

extern void XgbDocumentCheck(const char *data, Size len, bool json, XgbDocument *doc);

#endif							/* PGMAKER_MODEL_H */
