/* scratch.h - a scratch folder for the tests that write files: made under
 * $TMPDIR (or /tmp) and removed with its files afterwards. */
#ifndef CNNKIT_TESTS_SCRATCH_H
#define CNNKIT_TESTS_SCRATCH_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes dir ("$TMPDIR/cnnkit-TAG-XXXXXX"); 0 on success, -1 on failure. */
static inline int scratch_make(char *dir, size_t cap, const char *tag) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/cnnkit-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes the files directly in dir, then dir. */
static inline void scratch_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[600];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

#endif
