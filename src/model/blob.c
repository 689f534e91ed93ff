/*-------------------------------------------------------------------------
 * src/model/blob.c
 *		The model blob: writing it, checking and reading it, and the
 *		prediction of a deserialised model.
 *
 * Written with pq_send*; read with pq_getmsg* after an explicit bounds
 * check, so a short or malformed blob raises ERRCODE_DATA_CORRUPTED
 * instead of reading past its end.  The CRC-32C over the payload catches
 * tampering before any of it is interpreted.
 *-------------------------------------------------------------------------
 */
#include "model/model.h"

#include <math.h>

#include "eval/eval.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "port/pg_crc32c.h"
#include "utils/memutils.h"

static const char blob_magic[4] = {'P', 'G', 'M', 'K'};

/*
 * BlobCorrupt raises the error for a blob that cannot be read.
 */
void
BlobCorrupt(BlobReader *r, const char *what)
{
	if (r && r->model_id > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model %lld is corrupted", (long long) r->model_id),
				 errdetail("%s", what),
				 errhint("Retrain the model, or restore ml.models from a backup.")));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("model blob is corrupted"),
			 errdetail("%s", what)));
}

static void
blob_need(BlobReader *r, int64 bytes)
{
	if (bytes < 0 || bytes > (int64) (r->buf.len - r->buf.cursor))
		BlobCorrupt(r, "The blob ends before its last field.");
}

int32
BlobGetInt32(BlobReader *r)
{
	blob_need(r, 4);
	return (int32) pq_getmsgint(&r->buf, 4);
}

int64
BlobGetInt64(BlobReader *r)
{
	blob_need(r, 8);
	return pq_getmsgint64(&r->buf);
}

double
BlobGetFloat8(BlobReader *r)
{
	blob_need(r, 8);
	return pq_getmsgfloat8(&r->buf);
}

bool
BlobGetBool(BlobReader *r)
{
	int			b;

	blob_need(r, 1);
	b = pq_getmsgbyte(&r->buf);
	if (b != 0 && b != 1)
		BlobCorrupt(r, "A boolean field holds neither 0 nor 1.");
	return b == 1;
}

/*
 * A count of items that follow, each at least item_bytes long: it must be
 * non-negative, at most max, and fit in what is left of the blob, so that
 * a bad count fails here rather than in a huge allocation.
 */
int32
BlobGetCount(BlobReader *r, int32 max, int item_bytes, const char *what)
{
	int32		n = BlobGetInt32(r);

	if (n < 0 || n > max ||
		(int64) n * item_bytes > (int64) (r->buf.len - r->buf.cursor))
		BlobCorrupt(r, psprintf("The number of %s is out of range (%d).", what, n));
	return n;
}

/* A length-prefixed string. */
char *
BlobGetString(BlobReader *r)
{
	int32		len = BlobGetInt32(r);
	const char *bytes;

	if (len < 0)
		BlobCorrupt(r, "A string has a negative length.");
	blob_need(r, len);
	bytes = pq_getmsgbytes(&r->buf, len);
	if (memchr(bytes, '\0', len) != NULL)
		BlobCorrupt(r, "A string holds a zero byte.");
	if (!pg_verifymbstr(bytes, len, true))
		BlobCorrupt(r, "A string is not valid in the database encoding.");
	return pnstrdup(bytes, len);
}

void
BlobGetFloat8Array(BlobReader *r, double *out, int64 n)
{
	blob_need(r, n * 8);
	for (int64 i = 0; i < n; i++)
		out[i] = pq_getmsgfloat8(&r->buf);
}

void
BlobPutString(StringInfo buf, const char *s)
{
	int32		len = strlen(s);

	pq_sendint32(buf, len);
	pq_sendbytes(buf, s, len);
}

void
BlobPutFloat8Array(StringInfo buf, const double *v, int64 n)
{
	for (int64 i = 0; i < n; i++)
		pq_sendfloat8(buf, v[i]);
}

/*
 * ModelSerialize writes a model into a new bytea.
 */
bytea *
ModelSerialize(const Model *m)
{
	StringInfoData payload;
	StringInfoData blob;
	pg_crc32c	crc;

	initStringInfo(&payload);
	pq_sendint32(&payload, m->task);
	pq_sendint32(&payload, m->nclasses);
	pq_sendbyte(&payload, m->labels_numeric);
	for (int c = 0; c < m->nclasses; c++)
		BlobPutString(&payload, m->labels[c]);
	if (m->labels_numeric)
		BlobPutFloat8Array(&payload, m->label_values, m->nclasses);
	pq_sendbyte(&payload, m->has_threshold);
	if (m->has_threshold)
		pq_sendfloat8(&payload, m->threshold);
	PipelineSerialize(m->pipeline, &payload);
	pq_sendint32(&payload, m->fitted->p);
	pq_sendint32(&payload, m->fitted->noutputs);
	m->fitted->spec->serialize(m->fitted, &payload);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, payload.data, payload.len);
	FIN_CRC32C(crc);

	initStringInfo(&blob);
	pq_sendbytes(&blob, blob_magic, sizeof(blob_magic));
	pq_sendint16(&blob, MODEL_BLOB_VERSION);
	BlobPutString(&blob, m->fitted->spec->name);
	pq_sendint32(&blob, payload.len);
	pq_sendint32(&blob, crc);
	pq_sendbytes(&blob, payload.data, payload.len);
	pfree(payload.data);

	{
		bytea	   *result = palloc(VARHDRSZ + blob.len);

		SET_VARSIZE(result, VARHDRSZ + blob.len);
		memcpy(VARDATA(result), blob.data, blob.len);
		pfree(blob.data);
		return result;
	}
}

/*
 * ModelDeserialize checks a blob (magic, version, length, checksum) and
 * reads the model it holds into the current memory context.
 */
Model *
ModelDeserialize(bytea *blob, int64 model_id)
{
	BlobReader	r;
	Model	   *m = palloc0(sizeof(Model));
	char		magic[4];
	int			version;
	char	   *algo_name;
	const AlgoSpec *spec;
	uint32		payload_len;
	uint32		stored_crc;
	pg_crc32c	crc;
	int32		task;
	int32		p;

	r.model_id = model_id;
	r.buf.data = VARDATA_ANY(blob);
	r.buf.len = VARSIZE_ANY_EXHDR(blob);
	r.buf.maxlen = r.buf.len;
	r.buf.cursor = 0;

	if (r.buf.len < (int) (sizeof(magic) + 2))
		BlobCorrupt(&r, "The blob is too short to hold a header.");
	pq_copymsgbytes(&r.buf, magic, sizeof(magic));
	if (memcmp(magic, blob_magic, sizeof(magic)) != 0)
		BlobCorrupt(&r, "The blob does not start with the pgmaker magic number.");
	version = (uint16) pq_getmsgint(&r.buf, 2);
	if (version != MODEL_BLOB_VERSION)
		ereport(ERROR,
				(errcode(version > MODEL_BLOB_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED : ERRCODE_DATA_CORRUPTED),
				 errmsg("model blob has format version %d, but this pgmaker reads version %d",
						version, MODEL_BLOB_VERSION),
				 errhint("Install the pgmaker version that wrote it, or retrain the model.")));
	algo_name = BlobGetString(&r);
	spec = AlgoFind(algo_name);
	if (spec == NULL)
		BlobCorrupt(&r, psprintf("The blob names an unknown algorithm \"%s\".", algo_name));
	payload_len = (uint32) BlobGetInt32(&r);
	stored_crc = (uint32) BlobGetInt32(&r);
	if ((int64) payload_len != (int64) (r.buf.len - r.buf.cursor))
		BlobCorrupt(&r, psprintf("The header announces %u payload bytes but the blob holds %d.",
								 payload_len, r.buf.len - r.buf.cursor));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, r.buf.data + r.buf.cursor, payload_len);
	FIN_CRC32C(crc);
	if (crc != stored_crc)
		BlobCorrupt(&r, "The payload checksum does not match.");

	task = BlobGetInt32(&r);
	if (task < 0 || task > ML_TASK_DECOMPOSITION)
		BlobCorrupt(&r, "The task is out of range.");
	m->id = model_id;
	m->task = (MLTask) task;
	m->nclasses = BlobGetCount(&r, 1000000, 4, "classes");
	m->labels_numeric = BlobGetBool(&r);
	m->labels = palloc(sizeof(char *) * Max(m->nclasses, 1));
	for (int c = 0; c < m->nclasses; c++)
		m->labels[c] = BlobGetString(&r);
	if (m->labels_numeric)
	{
		m->label_values = palloc(sizeof(double) * Max(m->nclasses, 1));
		BlobGetFloat8Array(&r, m->label_values, m->nclasses);
	}
	m->has_threshold = BlobGetBool(&r);
	if (m->has_threshold)
	{
		m->threshold = BlobGetFloat8(&r);
		if (m->nclasses != 2 || !isfinite(m->threshold))
			BlobCorrupt(&r, "The decision threshold is not that of a binary classifier.");
	}
	if ((m->task == ML_TASK_CLASSIFICATION) != (m->nclasses >= 2))
		BlobCorrupt(&r, "The number of classes does not fit the task.");
	m->pipeline = PipelineDeserialize(&r);
	p = BlobGetInt32(&r);
	if (p != m->pipeline->nfeatures)
		BlobCorrupt(&r, "The algorithm's feature count does not match the pipeline's.");
	if (!(spec->tasks & ML_TASK_BIT(m->task)))
		BlobCorrupt(&r, "The algorithm does not do the model's task.");

	m->fitted = palloc0(sizeof(AlgoModel));
	m->fitted->spec = spec;
	m->fitted->task = m->task;
	m->fitted->p = p;
	m->fitted->nclasses = m->nclasses;
	m->fitted->noutputs = BlobGetInt32(&r);
	if (m->fitted->noutputs < 0 || m->fitted->noutputs > 1000000 ||
		((m->task == ML_TASK_CLUSTERING || m->task == ML_TASK_DECOMPOSITION) &&
		 m->fitted->noutputs < 1))
		BlobCorrupt(&r, "The number of outputs is out of range.");
	spec->deserialize(m->fitted, &r);
	if (r.buf.cursor != r.buf.len)
		BlobCorrupt(&r, "The blob has bytes after its last field.");
	return m;
}

/*
 * ModelOutputs is the number of values ModelPredictBlock writes per row.
 */
int
ModelOutputs(const Model *m)
{
	return AlgoOutputs(m->fitted);
}

/*
 * ModelPredictBlock predicts n rows of transformed features (column-major,
 * leading dimension ld) into out (n x ModelOutputs, row-major).
 */
void
ModelPredictBlock(const Model *m, const double *X, int n, int ld, double *out)
{
	m->fitted->spec->predict(m->fitted, X, n, ld, out);
}

/*
 * ModelThreshold is the model's decision threshold, or NaN when it picks
 * the most probable class.
 */
double
ModelThreshold(const Model *m)
{
	return m->has_threshold ? m->threshold : NAN;
}

/*
 * ModelPredictClass returns the class a row's outputs predict: class 1 of
 * a binary model with a decision threshold when its output reaches it,
 * else the most probable class (ties to the lower index).
 */
int
ModelPredictClass(const Model *m, const double *outputs)
{
	return MetricsDecide(outputs, m->nclasses, ModelThreshold(m));
}

/*
 * ModelNearestCluster returns the cluster whose centre is nearest (ties to
 * the lower index), given the distances a clustering model outputs.
 */
int
ModelNearestCluster(const Model *m, const double *outputs)
{
	int			best = 0;

	for (int c = 1; c < m->fitted->noutputs; c++)
		if (outputs[c] < outputs[best])
			best = c;
	return best;
}

/*
 * ModelPredictValue is what ml.predict returns for one row's outputs: the
 * regression value, or the predicted label when labels are numeric or
 * boolean, else the label's index.
 */
double
ModelPredictValue(const Model *m, const double *outputs)
{
	int			c;

	switch (m->task)
	{
		case ML_TASK_REGRESSION:
			return outputs[0];
		case ML_TASK_CLASSIFICATION:
			c = ModelPredictClass(m, outputs);
			return m->labels_numeric ? m->label_values[c] : (double) c;
		case ML_TASK_CLUSTERING:
			return (double) ModelNearestCluster(m, outputs);
		case ML_TASK_DECOMPOSITION:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("model %lld does decomposition, which predicts no single value",
							(long long) m->id),
					 errhint("Use ml.embed for its projection.")));
	}
	return 0.0;					/* keep compiler quiet */
}
