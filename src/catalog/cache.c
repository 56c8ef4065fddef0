/* cache.c — the local model cache: where it is, what a --model argument
 * resolves to, what is installed, and the steps every pull shares (staging
 * directory, atomic rename into place). */
#include "catalog/cache.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

asr_status catalog_path(char *out, size_t cap, asr_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "path too long: %.200s", out);
    return ASR_OK;
}

asr_status asr_catalog_models_dir(char *out, size_t cap, asr_error *err)
{
    const char *dir = getenv("ASR_MODELS_DIR");
    const char *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (dir && *dir)
        n = snprintf(out, cap, "%s", dir);
    else if (cache && *cache)
        n = snprintf(out, cap, "%s/asr/models", cache);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.cache/asr/models", home);
    else
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                            "cannot locate the model cache: set ASR_MODELS_DIR or HOME");
    if (n < 0 || (size_t)n >= cap)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "model cache path is too long");
    return ASR_OK;
}

int catalog_is_valid_name(const char *name)
{
    if (!*name || name[0] == '.' || strlen(name) > 200)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '.' && *p != '-' && *p != '_')
            return 0;
    return 1;
}

/* A name that never looks like a path: no slash, and not "." or "..". */
static int looks_like_path(const char *s)
{
    return strchr(s, '/') != NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

/* Hub organisation and repository names: letters, digits, '.', '-', '_',
 * not starting with '.' or '-', without "--" or ".." (the hub refuses
 * those too), at most 96 characters. */
static int is_hub_part(const char *s, size_t n)
{
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            c != '.' && c != '-' && c != '_')
            return 0;
        if (i > 0 && (c == '-' || c == '.') && s[i - 1] == c)
            return 0;
    }
    return 1;
}

asr_status asr_catalog_hub_cache_name(const char *ref, char *out, size_t cap, asr_error *err)
{
    size_t np = strlen(ASR_CATALOG_HUB_PREFIX);
    if (strncmp(ref, ASR_CATALOG_HUB_PREFIX, np) != 0)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "'%.200s' does not start with %s",
                            ref, ASR_CATALOG_HUB_PREFIX);
    const char *repo = ref + np;
    const char *slash = strchr(repo, '/');
    if (!slash || !is_hub_part(repo, (size_t)(slash - repo)) ||
        !is_hub_part(slash + 1, strlen(slash + 1)))
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                            "'%.200s' is not a hub repository: expected hf:ORG/REPO (letters, "
                            "digits, '.', '-', '_')",
                            ref);
    int n = snprintf(out, cap, "%.*s--%s", (int)(slash - repo), repo, slash + 1);
    if (n < 0 || (size_t)n >= cap)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "hub repository name is too long");
    return ASR_OK;
}

asr_status asr_catalog_resolve(const char *name_or_path, char *out, size_t cap, asr_error *err)
{
    const char *arg = name_or_path && *name_or_path ? name_or_path : ASR_CATALOG_DEFAULT_MODEL;
    struct stat st;
    char dir[PATH_MAX];
    if (strncmp(arg, ASR_CATALOG_HUB_PREFIX, strlen(ASR_CATALOG_HUB_PREFIX)) == 0) {
        char name[256];
        asr_status s = asr_catalog_hub_cache_name(arg, name, sizeof name, err);
        if (s != ASR_OK)
            return s;
        if ((s = asr_catalog_models_dir(dir, sizeof dir, err)) != ASR_OK)
            return s;
        if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
            return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "model path is too long");
        if (stat(out, &st) == 0)
            return ASR_OK;
        return catalog_fail(err, ASR_ERR_MODEL,
                            "model %.200s is not installed in %.200s; run: asr models pull %.200s",
                            arg, dir, arg);
    }
    /* A bare name is the cache's model first: a directory of that name in the
     * current directory must not take the place of the model the user pulled
     * (a planted ./tiny.en would otherwise be loaded instead). */
    if (!looks_like_path(arg) && catalog_is_valid_name(arg)) {
        if (asr_catalog_models_dir(dir, sizeof dir, NULL) == ASR_OK &&
            (size_t)snprintf(out, cap, "%s/%s", dir, arg) < cap && stat(out, &st) == 0)
            return ASR_OK;
    }
    if (stat(arg, &st) == 0) {
        if ((size_t)snprintf(out, cap, "%s", arg) >= cap)
            return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "model path is too long");
        return ASR_OK;
    }
    if (looks_like_path(arg) || !catalog_is_valid_name(arg))
        return catalog_fail(err, ASR_ERR_MODEL, "model %.300s: %s", arg, strerror(errno));
    asr_status s = asr_catalog_models_dir(dir, sizeof dir, err);
    if (s != ASR_OK)
        return s;
    if ((size_t)snprintf(out, cap, "%s/%s", dir, arg) >= cap)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "model path is too long");
    if (stat(out, &st) == 0)
        return ASR_OK;
    int i = catalog_pinned_find(arg);
    if (i >= 0 && !asr_catalog_at(i).unavailable)
        return catalog_fail(err, ASR_ERR_MODEL,
                            "model %s is not installed in %.300s; run: asr models pull %s", arg,
                            dir, arg);
    return catalog_fail(err, ASR_ERR_MODEL,
                        "model %s: no such file or directory, and no model of that name in "
                        "%.300s (asr models list shows what is there)",
                        arg, dir);
}

/* ---- listing ------------------------------------------------------------ */

/* Bytes of the regular files directly in dir (model directories are flat). */
static uint64_t dir_size(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), ent->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

asr_status asr_catalog_list_installed(void (*fn)(const asr_catalog_installed *m, void *user),
                                      void *user, asr_error *err)
{
    char models_dir[PATH_MAX];
    asr_status s = asr_catalog_models_dir(models_dir, sizeof models_dir, err);
    if (s != ASR_OK)
        return s;
    DIR *d = opendir(models_dir);
    if (!d)
        return ASR_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    s = ASR_OK;
    while ((ent = readdir(d))) {
        /* Skip hidden names (downloads in progress) and staging/old
         * directories of interrupted pulls. */
        if (ent->d_name[0] == '.' || strstr(ent->d_name, ".tmp-") || strstr(ent->d_name, ".old-"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                s = catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory listing %s", models_dir);
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(ent->d_name))) {
            s = catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory listing %s", models_dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (s == ASR_OK && catalog_path(path, sizeof path, NULL, "%s/%s", models_dir, names[i]) == ASR_OK &&
            stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
            asr_catalog_installed m = {
                .name = names[i],
                .bytes = S_ISDIR(st.st_mode) ? dir_size(path) : (uint64_t)st.st_size,
                .is_dir = S_ISDIR(st.st_mode),
            };
            fn(&m, user);
        }
        free(names[i]);
    }
    free(names);
    return s;
}

uint64_t asr_catalog_partial_bytes(void)
{
    char models_dir[PATH_MAX], downloads[PATH_MAX];
    if (asr_catalog_models_dir(models_dir, sizeof models_dir, NULL) != ASR_OK ||
        catalog_path(downloads, sizeof downloads, NULL, "%s/.downloads", models_dir) != ASR_OK)
        return 0;
    return dir_size(downloads);
}

/* ---- directories -------------------------------------------------------- */

int catalog_make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void catalog_remove_tree(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void catalog_remove_stale(const char *models_dir, const char *name,
                          const asr_catalog_pull_params *p)
{
    DIR *d = opendir(models_dir);
    if (!d)
        return;
    char download_prefix[300], staging_prefix[300];
    snprintf(download_prefix, sizeof download_prefix, ".download-%s-", name);
    snprintf(staging_prefix, sizeof staging_prefix, "%s.tmp-", name);
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *pid_text = NULL;
        if (strncmp(ent->d_name, download_prefix, strlen(download_prefix)) == 0)
            pid_text = ent->d_name + strlen(download_prefix);
        else if (strncmp(ent->d_name, staging_prefix, strlen(staging_prefix)) == 0)
            pid_text = ent->d_name + strlen(staging_prefix);
        if (!pid_text || !*pid_text)
            continue;
        char *end;
        long pid = strtol(pid_text, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* still running, or not ours to judge */
        char path[PATH_MAX];
        if (catalog_path(path, sizeof path, NULL, "%s/%s", models_dir, ent->d_name) == ASR_OK) {
            catalog_note(p, "removing %s, left by an interrupted pull", path);
            catalog_remove_tree(path);
        }
    }
    closedir(d);
}

asr_status catalog_make_staging(const char *final_dir, char *staging, size_t cap, asr_error *err)
{
    asr_status s = catalog_path(staging, cap, err, "%s.tmp-%ld", final_dir, (long)getpid());
    if (s != ASR_OK) {
        staging[0] = '\0';
        return s;
    }
    catalog_remove_tree(staging); /* left by an earlier run with our pid */
    if (mkdir(staging, 0755) != 0) {
        s = catalog_fail(err, ASR_ERR_IO, "cannot create %.300s: %s", staging, strerror(errno));
        staging[0] = '\0';
    }
    return s;
}

asr_status catalog_install_staged(const char *staging, const char *final_dir, const char *name,
                                  int force, const asr_catalog_pull_params *p, asr_error *err)
{
    char old_dir[PATH_MAX] = "";
    struct stat st;
    if (force && lstat(final_dir, &st) == 0) {
        asr_status s = catalog_path(old_dir, sizeof old_dir, err, "%s.old-%ld", final_dir,
                                    (long)getpid());
        if (s != ASR_OK)
            return s;
        catalog_remove_tree(old_dir);
        if (rename(final_dir, old_dir) != 0)
            return catalog_fail(err, ASR_ERR_IO, "cannot move the old %.300s aside: %s",
                                final_dir, strerror(errno));
    }
    if (rename(staging, final_dir) != 0) {
        if (!old_dir[0] && (errno == ENOTEMPTY || errno == EEXIST)) {
            /* Another pull of the same model finished first; its copy
             * passed the same checks, so keep it. */
            catalog_note(p, "%s was installed by another process meanwhile", name);
            return ASR_OK;
        }
        int e = errno;
        if (old_dir[0])
            rename(old_dir, final_dir);
        return catalog_fail(err, ASR_ERR_IO, "cannot rename %.200s to %.200s: %s", staging,
                            final_dir, strerror(e));
    }
    if (old_dir[0])
        catalog_remove_tree(old_dir);
    return ASR_OK;
}

/* ---- progress ----------------------------------------------------------- */

/* One progress event, its message formatted. */
static void emit_progress(const asr_catalog_pull_params *p, asr_catalog_event ev, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    ev.message = line;
    p->progress(&ev, p->user);
}

void catalog_note(const asr_catalog_pull_params *p, const char *fmt, ...)
{
    if (!p || !p->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_progress(p, (asr_catalog_event){.kind = ASR_CATALOG_NOTE}, fmt, ap);
    va_end(ap);
}

void catalog_step(const asr_catalog_pull_params *p, int step, int n_steps, const char *fmt, ...)
{
    if (!p || !p->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_progress(p, (asr_catalog_event){.kind = ASR_CATALOG_STEP, .step = step, .n_steps = n_steps}, fmt, ap);
    va_end(ap);
}

void catalog_bytes(const asr_catalog_pull_params *p, const char *file, uint64_t done,
                   uint64_t total)
{
    if (!p || !p->progress)
        return;
    asr_catalog_event ev = {.kind = ASR_CATALOG_BYTES, .file = file, .done = done, .total = total};
    p->progress(&ev, p->user);
}

/* ---- pull --------------------------------------------------------------- */

asr_catalog_pull_params asr_catalog_default_pull_params(void)
{
    asr_catalog_pull_params p = {0};
    return p;
}

asr_status asr_catalog_pull(const char *name, const asr_catalog_pull_params *params,
                            asr_catalog_pulled *out, asr_error *err)
{
    asr_catalog_pull_params defaults = asr_catalog_default_pull_params();
    const asr_catalog_pull_params *p = params ? params : &defaults;
    memset(out, 0, sizeof *out);
    int is_hub = strncmp(name, ASR_CATALOG_HUB_PREFIX, strlen(ASR_CATALOG_HUB_PREFIX)) == 0;
    int index = -1;
    asr_status s;
    if (is_hub) {
        if ((s = asr_catalog_hub_cache_name(name, out->name, sizeof out->name, err)) != ASR_OK)
            return s;
    } else {
        index = catalog_pinned_find(name);
        if (index < 0) {
            char names[256] = "";
            for (int i = 0; i < asr_catalog_count(); i++)
                if (!asr_catalog_at(i).unavailable &&
                    strlen(names) + strlen(asr_catalog_at(i).name) + 2 < sizeof names) {
                    strcat(names, " ");
                    strcat(names, asr_catalog_at(i).name);
                }
            return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                                "unknown model '%.200s'; pullable models:%s (or hf:ORG/REPO from "
                                "the hub)",
                                name, names);
        }
        asr_catalog_entry m = asr_catalog_at(index);
        if (m.unavailable)
            return catalog_fail(err, ASR_ERR_UNSUPPORTED, "model %s cannot be pulled: %s", name,
                                m.unavailable);
        snprintf(out->name, sizeof out->name, "%s", m.name);
    }
    char models_dir[PATH_MAX];
    if ((s = asr_catalog_models_dir(models_dir, sizeof models_dir, err)) != ASR_OK)
        return s;
    /* Room for the ".tmp-PID" and ".old-PID" suffixes. */
    if ((size_t)snprintf(out->path, sizeof out->path, "%s/%s", models_dir, out->name) >=
        sizeof out->path - 32)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "model cache path is too long");
    struct stat st;
    if (!p->force && lstat(out->path, &st) == 0) {
        out->already = 1;
        return ASR_OK;
    }
    if (catalog_make_dirs(models_dir) != 0)
        return catalog_fail(err, ASR_ERR_IO, "cannot create the model cache %.300s: %s",
                            models_dir, strerror(errno));
    catalog_remove_stale(models_dir, out->name, p);
    if (is_hub)
        return catalog_pull_hub(name + strlen(ASR_CATALOG_HUB_PREFIX), out->name, models_dir,
                                out->path, p, err);
    return catalog_pull_pinned(index, models_dir, out->path, p, err);
}
