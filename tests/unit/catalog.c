/* catalog.c — unit test of the model catalogue's names: which hf:ORG/REPO
 * references are accepted and what cache name each gets, and how --model
 * arguments resolve in a scratch cache. */
#include "check.h"

/* The catalogue's objects are not part of libasr.a, so the files under test
 * are compiled into this test directly. */
#include "catalog/cache.c"
#include "catalog/pinned.c"
#include "catalog/sha256.c"
#include "catalog/zip.c"

#include <stdlib.h>

/* Refused before any network use: the hub pull is never reached. */
asr_status catalog_pull_hub(const char *repo, const char *cache_name, const char *models_dir,
                            const char *final_dir, const asr_catalog_pull_params *p,
                            asr_error *err)
{
    (void)repo, (void)cache_name, (void)models_dir, (void)final_dir, (void)p;
    return catalog_fail(err, ASR_ERR_INTERNAL, "not in this test");
}

static int name_of(const char *ref, char *out)
{
    asr_error err;
    return asr_catalog_hub_cache_name(ref, out, 256, &err) == ASR_OK;
}

int main(void)
{
    char name[256];
    CHECK(name_of("hf:Systran/faster-whisper-small", name) &&
              strcmp(name, "Systran--faster-whisper-small") == 0,
          "hf:Systran/faster-whisper-small -> %s", name);
    CHECK(name_of("hf:a.b/c_d-1.0", name) && strcmp(name, "a.b--c_d-1.0") == 0, "dots, underscores: %s", name);
    const char *bad[] = {"hf:", "hf:a", "hf:/b", "hf:a/", "hf:a/b/c", "hf:../b", "hf:a/..",
                         "hf:a--b/c", "hf:a/b--c", "hf:.a/b", "hf:-a/b", "hf:a/b c", "hf:a/b%2f",
                         "hf:a\\b/c", "Systran/x", "hf:a/b\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!name_of(bad[i], name), "refused: %s", bad[i]);
    char long_ref[300] = "hf:o/";
    memset(long_ref + 5, 'r', 97);
    CHECK(!name_of(long_ref, name), "a 97-character repository name is refused");

    char tmpl[] = "/tmp/catalog-test-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL, "scratch cache %s", tmpl);
    setenv("ASR_MODELS_DIR", tmpl, 1);
    char path[PATH_MAX], want[PATH_MAX];
    asr_error err;
    CHECK(asr_catalog_resolve("hf:o/r", path, sizeof path, &err) == ASR_ERR_MODEL &&
              strstr(err.message, "run: asr models pull hf:o/r"),
          "an absent hub model says how to pull it: %s", err.message);
    snprintf(want, sizeof want, "%s/o--r", tmpl);
    CHECK(mkdir(want, 0755) == 0, "install o--r");
    CHECK(asr_catalog_resolve("hf:o/r", path, sizeof path, &err) == ASR_OK && strcmp(path, want) == 0,
          "hf:o/r resolves to %s", path);
    CHECK(asr_catalog_resolve("o--r", path, sizeof path, &err) == ASR_OK && strcmp(path, want) == 0,
          "so does its cache name");
    CHECK(asr_catalog_resolve("hf:o/../r", path, sizeof path, &err) == ASR_ERR_INVALID_ARGUMENT,
          "a malformed hub reference is an argument error");
    CHECK(asr_catalog_resolve("tiny.en", path, sizeof path, &err) == ASR_ERR_MODEL &&
              strstr(err.message, "run: asr models pull tiny.en"),
          "an absent catalogue model says how to pull it");

    asr_catalog_pulled out;
    CHECK(asr_catalog_pull("nonexistent", NULL, &out, &err) == ASR_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "unknown model 'nonexistent'"),
          "unknown names: %s", err.message);
    CHECK(asr_catalog_pull("small", NULL, &out, &err) == ASR_ERR_UNSUPPORTED, "small cannot be pulled");
    CHECK(asr_catalog_pull("hf:o/r", NULL, &out, &err) == ASR_OK && out.already &&
              strcmp(out.path, want) == 0,
          "pulling an installed hub model does nothing");
    CHECK(asr_catalog_partial_bytes() == 0, "no partial downloads");
    catalog_remove_tree(tmpl);
    return CHECK_DONE();
}
