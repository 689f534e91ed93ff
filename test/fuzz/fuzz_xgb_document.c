/*
 * test/fuzz/fuzz_xgb_document.c: XgbDocumentCheck, which reads a model
 * document given to ml.import_model (JSON or UBJSON) before XGBoost may.
 * The first byte of the input picks the format; the rest is the document.
 */
#include "postgres.h"

#include "model/model.h"

#include "shim.h"

typedef struct Input
{
	const char *data;
	size_t		len;
	bool		json;
} Input;

static void
check(void *arg)
{
	Input	   *in = arg;
	XgbDocument doc;

	XgbDocumentCheck(in->data, in->len, in->json, &doc);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Input		in;
	char	   *copy;

	if (size < 1)
		return 0;
	/* a copy of exactly the document's bytes, so reads past it are caught */
	copy = malloc(size - 1);	/* malloc(0) too: any read of it is caught */
	memcpy(copy, data + 1, size - 1);
	in.data = copy;
	in.len = size - 1;
	in.json = (data[0] & 1) == 0;
	(void) ShimRun(check, &in);
	ShimFreeAll();
	free(copy);
	return 0;
}
