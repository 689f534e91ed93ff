/*-------------------------------------------------------------------------
 * src/http/s3.c
 *		s3://bucket/key URLs: the object's HTTPS URL, and its AWS Signature
 *		Version 4 from a credential in ml.credentials (libcurl signs).
 *
 * A credential is read with the caller's rights: ml.credentials has
 * row-level security, so a role sees only the credentials of the roles
 * it is a member of (superusers see all).  The secret never reaches a
 * message.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pgmaker.h"
#include "http/s3.h"

/* SHA-256 of an empty payload: the hash every GET carries */
#define EMPTY_PAYLOAD_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

void
S3OptionsInit(S3Options *o)
{
	memset(o, 0, sizeof(*o));
}

static char *
string_option(JsonbValue *v, const char *key)
{
	if (v->type != jbvString || v->val.string.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a non-empty string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

bool
S3Option(S3Options *o, const char *key, JsonbValue *v)
{
	if (strcmp(key, "credentials") == 0)
		o->credentials = string_option(v, key);
	else if (strcmp(key, "endpoint") == 0)
	{
		o->endpoint = string_option(v, key);
		if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"endpoint\" must be an http:// or https:// URL")));
	}
	else if (strcmp(key, "region") == 0)
	{
		o->region = string_option(v, key);
		for (const char *p = o->region; *p; p++)
			if (!isalnum((unsigned char) *p) && *p != '-')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid region \"%s\"", o->region)));
	}
	else
		return false;
	return true;
}

/* Percent-encodes an object key as S3 expects, keeping its slashes. */
static void
append_key(StringInfo buf, const char *key)
{
	for (const unsigned char *p = (const unsigned char *) key; *p; p++)
	{
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/')
			appendStringInfoChar(buf, (char) *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

/* A string member of the secret; NULL when absent and not required. */
static char *
secret_member(Jsonb *secret, const char *name, const char *credential, bool required)
{
	JsonbValue	key;
	JsonbValue *v;

	key.type = jbvString;
	key.val.string.val = (char *) name;
	key.val.string.len = strlen(name);
	v = findJsonbValueFromContainer(&secret->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvString)
	{
		if (!required)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("credentials \"%s\" have no string \"%s\"", credential, name),
				 errhint("S3 credentials hold access_key_id and secret_access_key, and may hold session_token and region.")));
	}
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Reads a credential visible to the current user. */
static Jsonb *
lookup_credentials(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	Jsonb	   *secret = NULL;
	MemoryContext caller = CurrentMemoryContext;

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.secret FROM ml.credentials c "
							  "WHERE c.name = $1 AND pg_catalog.pg_has_role(c.owner, 'USAGE') "
							  "ORDER BY c.owner = current_user::regrole DESC, c.owner::oid LIMIT 1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read ml.credentials");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(caller);

		secret = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	if (secret == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("credentials \"%s\" do not exist", name),
				 errhint("Store them with ml.set_credentials; a role sees only its own.")));
	if (!JB_ROOT_IS_OBJECT(secret) || JB_ROOT_IS_SCALAR(secret))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("credentials \"%s\" are not a JSON object", name)));
	return secret;
}

void
S3PrepareRequest(const char *url, const S3Options *o, HttpRequest *req)
{
	const char *bucket;
	const char *slash;
	char	   *bucket_name;
	const char *region = o->region;
	StringInfoData target;
	Jsonb	   *secret = NULL;

	memset(req, 0, sizeof(*req));
	if (pg_strncasecmp(url, "s3://", 5) != 0)
	{
		if (o->credentials || o->endpoint)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options \"credentials\" and \"endpoint\" apply to s3:// URLs only")));
		req->url = url;
		return;
	}

	bucket = url + 5;
	slash = strchr(bucket, '/');
	if (slash == NULL || slash == bucket || slash[1] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 URL \"%s\"", url),
				 errhint("An S3 URL is s3://bucket/key.")));
	bucket_name = pnstrdup(bucket, slash - bucket);
	for (const char *p = bucket_name; *p; p++)
		if (!(islower((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid S3 bucket name \"%s\"", bucket_name)));

	if (o->credentials)
	{
		secret = lookup_credentials(o->credentials);
		if (region == NULL)
			region = secret_member(secret, "region", o->credentials, false);
	}
	if (region == NULL)
		region = "us-east-1";

	initStringInfo(&target);
	if (o->endpoint)
	{
		size_t		n = strlen(o->endpoint);

		appendBinaryStringInfo(&target, o->endpoint, (o->endpoint[n - 1] == '/') ? n - 1 : n);
		appendStringInfo(&target, "/%s/", bucket_name);
	}
	else
		appendStringInfo(&target, "https://%s.s3.%s.amazonaws.com/", bucket_name, region);
	append_key(&target, slash + 1);
	req->url = target.data;

	if (secret != NULL)
	{
		char	   *token = secret_member(secret, "session_token", o->credentials, false);

		req->aws_sigv4 = psprintf("aws:amz:%s:s3", region);
		req->userpwd = psprintf("%s:%s",
								secret_member(secret, "access_key_id", o->credentials, true),
								secret_member(secret, "secret_access_key", o->credentials, true));
		req->headers = lappend(req->headers, "x-amz-content-sha256: " EMPTY_PAYLOAD_SHA256);
		if (token)
			req->headers = lappend(req->headers, psprintf("x-amz-security-token: %s", token));
	}
}
