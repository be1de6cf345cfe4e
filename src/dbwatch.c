/* inotify on the directory of a SQLite file, for writes to its -wal
 * (dbwatch.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "orderflow/dbwatch.h"
#include "orderflow/error.h"

struct of_dbwatch {
        int fd;
        char wal[NAME_MAX + 1]; /* the -wal's name within the directory */
};

int of_dbwatch_open(of_dbwatch **out, const char *db_path, char *errstr,
                    size_t errstr_size)
{
        const char *slash = strrchr(db_path, '/');
        const char *base = slash ? slash + 1 : db_path;
        char dir[PATH_MAX];
        of_dbwatch *w;

        *out = NULL;
        if (strlen(base) + 4 > NAME_MAX)
                return of_errf(errstr, errstr_size, "name too long: %s",
                               db_path);
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if (slash == db_path)
                snprintf(dir, sizeof(dir), "/");
        else if ((size_t)(slash - db_path) >= sizeof(dir))
                return of_errf(errstr, errstr_size, "path too long: %s",
                               db_path);
        else
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - db_path),
                         db_path);
        if (!(w = calloc(1, sizeof(*w))))
                return of_errf(errstr, errstr_size, "out of memory");
        snprintf(w->wal, sizeof(w->wal), "%s-wal", base);
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0 || inotify_add_watch(w->fd, dir, IN_MODIFY) < 0) {
                int e = errno;

                of_dbwatch_close(w);
                return of_errf(errstr, errstr_size, "inotify on %s: %s", dir,
                               strerror(e));
        }
        *out = w;
        return 0;
}

/* Take every event queued; 1 when one was a write to the -wal. */
static int drain(of_dbwatch *w)
{
        char buf[4096]
                __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        int hit = 0;

        while ((len = read(w->fd, buf, sizeof(buf))) > 0) {
                const char *p = buf;

                while (p < buf + len) {
                        const struct inotify_event *e =
                                (const struct inotify_event *)p;

                        /* IN_Q_OVERFLOW (wd -1): events were lost, so
                         * one may have been ours */
                        if (e->wd < 0 ||
                            (e->len && strcmp(e->name, w->wal) == 0))
                                hit = 1;
                        p += sizeof(*e) + e->len;
                }
        }
        return hit;
}

int of_dbwatch_fd(const of_dbwatch *w)
{
        return w->fd;
}

int of_dbwatch_take(of_dbwatch *w)
{
        return drain(w);
}

void of_dbwatch_close(of_dbwatch *w)
{
        if (!w)
                return;
        if (w->fd >= 0)
                close(w->fd);
        free(w);
}
