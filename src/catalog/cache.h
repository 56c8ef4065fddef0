/* cache.h — what the catalogue's files share: path and directory helpers,
 * progress events, and the atomic install of a staged model directory. */
#ifndef ASR_CATALOG_CACHE_H
#define ASR_CATALOG_CACHE_H

#include "catalog/catalog.h"
#include "catalog/fail.h"

/* snprintf for paths: ASR_ERR_INVALID_ARGUMENT when out is too small. */
asr_status catalog_path(char *out, size_t cap, asr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A model name is one path component that cannot climb out of the cache. */
int catalog_is_valid_name(const char *name);

/* mkdir -p; 0 or -1 with errno. */
int catalog_make_dirs(const char *path);
/* rm -r of a directory this process created; never follows symlinks. */
void catalog_remove_tree(const char *path);

/* Progress events (nothing happens when params->progress is NULL). */
void catalog_note(const asr_catalog_pull_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void catalog_step(const asr_catalog_pull_params *p, int step, int n_steps, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void catalog_bytes(const asr_catalog_pull_params *p, const char *file, uint64_t done,
                   uint64_t total);

/* Remove "NAME.tmp-PID" staging directories (and entries named
 * ".download-NAME-PID") that a pull whose process is gone left behind.
 * "NAME.old-PID" is kept: if a --force pull died between its two renames,
 * it is the only copy of the previous model. */
void catalog_remove_stale(const char *models_dir, const char *name,
                          const asr_catalog_pull_params *p);

/* Make "FINAL.tmp-PID" (written to staging, cap PATH_MAX) as a fresh directory. */
asr_status catalog_make_staging(const char *final_dir, char *staging, size_t cap, asr_error *err);

/* Rename the finished staging directory to final_dir; with force, the old
 * copy is moved aside first and removed after. When another pull installed
 * the model meanwhile, its copy is kept (a note says so) and staging is
 * left for the caller to remove. */
asr_status catalog_install_staged(const char *staging, const char *final_dir, const char *name,
                                  int force, const asr_catalog_pull_params *p, asr_error *err);

/* The two kinds of pull, after the cache directory exists and final_dir is
 * known not to be installed (or force is set). */
asr_status catalog_pull_pinned(int index, const char *models_dir, const char *final_dir,
                               const asr_catalog_pull_params *p, asr_error *err);
asr_status catalog_pull_hub(const char *repo, const char *cache_name, const char *models_dir,
                            const char *final_dir, const asr_catalog_pull_params *p,
                            asr_error *err);

/* The pinned catalogue's entry called name, its index, or -1. */
int catalog_pinned_find(const char *name);

#endif
