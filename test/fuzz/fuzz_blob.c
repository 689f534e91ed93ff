/*
 * test/fuzz/fuzz_blob.c: ModelDeserialize, the reader of the model blobs
 * in ml.models, with every algorithm's own reader behind it, and a
 * prediction from what it read.  The checksum would turn almost every
 * mutation away before the payload is read, so the harness writes a valid
 * header around the payload it is given: byte 0 picks the algorithm, the
 * rest is the payload.  A blob that reads must predict a row of zeros
 * without reading out of bounds.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "port/pg_crc32c.h"

#include "algo/algo.h"
#include "model/model.h"

#include "shim.h"

static const char *const algorithm_names[] = {
	"linear", "ridge", "lasso", "elastic_net", "logistic", "naive_bayes", "linear_svm",
	"xgboost", "random_forest", "kmeans", "pca", "endpoint", "ensemble"
};

static void
put32(StringInfo s, uint32 v)
{
	char		b[4] = {(char) (v >> 24), (char) (v >> 16), (char) (v >> 8), (char) v};

	appendBinaryStringInfo(s, b, 4);
}

static void
read_and_predict(void *arg)
{
	Model	   *m = ModelDeserialize((bytea *) arg, 1);
	int			p = m->fitted->p;
	int			k = ModelOutputs(m);
	double	   *x;
	double	   *out;

	if (p < 1 || p > 100000 || k < 1 || k > 100000)
		return;
	/* an endpoint model predicts over HTTP; an ensemble may hold one */
	if (strcmp(m->fitted->spec->name, "endpoint") == 0 ||
		strcmp(m->fitted->spec->name, "ensemble") == 0)
		return;
	x = palloc0(sizeof(double) * p);
	out = palloc0(sizeof(double) * k);
	ModelPredictBlock(m, x, 1, 1, out);	/* one row: column-major, ld 1 */
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name;
	StringInfoData blob;
	pg_crc32c	crc;
	bytea	   *b;

	if (size < 1)
		return 0;
	name = algorithm_names[data[0] % lengthof(algorithm_names)];
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data + 1, size - 1);
	FIN_CRC32C(crc);

	initStringInfo(&blob);
	appendBinaryStringInfo(&blob, "PGMK", 4);
	appendBinaryStringInfo(&blob, (char[]) {0, MODEL_BLOB_VERSION}, 2);
	put32(&blob, strlen(name));
	appendBinaryStringInfo(&blob, name, strlen(name));
	put32(&blob, size - 1);
	put32(&blob, crc);
	appendBinaryStringInfo(&blob, (const char *) data + 1, size - 1);

	/* exactly the blob's bytes, so reads past it are caught */
	b = malloc(VARHDRSZ + blob.len);
	SET_VARSIZE(b, VARHDRSZ + blob.len);
	memcpy(VARDATA(b), blob.data, blob.len);
	(void) ShimRun(read_and_predict, b);
	free(b);
	ShimFreeAll();
	return 0;
}
