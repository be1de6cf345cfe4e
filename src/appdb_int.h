/* Private to the application database's files: the of_appdb structure, its
 * fields grouped by the file that owns them. appdb.c opens and closes the
 * connection and calls outbox.c's outbox_open()/outbox_close(); outbox.c
 * calls nothing of appdb.c. */
#ifndef ORDERFLOW_APPDB_INT_H
#define ORDERFLOW_APPDB_INT_H

#include <stddef.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"

#include "sqldb.h"

/* appdb.c's statements; outbox.c's. */
enum {
        APP_BEGIN,
        APP_COMMIT,
        APP_ROLLBACK,
        APP_ORDER_GET,
        APP_ORDER_PUT,
        APP_ORDER_PAY,
        APP_OUTBOX_PUT,
        APP_PAYLOAD_PUT,
        APP_COUNT_ROWS,
        APP_OLDEST,
        APP_DATA_VERSION,
        APP_COUNT
};
enum {
        OB_BEGIN,
        OB_COMMIT,
        OB_ROLLBACK,
        OB_LEASES,
        OB_DUE,
        OB_LEASE,
        OB_RELEASE,
        OB_SENT,
        OB_HELD,
        OB_FAILED,
        OB_RETRY_ONE,
        OB_RETRY_ALL,
        OB_PRUNE,
        OB_SEQS,
        OB_COUNT
};

struct of_appdb {
        /* appdb.c: the connection; orders with their outbox rows */
        sqlite3 *db;
        sqlite3_stmt *stmt[APP_COUNT];

        /* outbox.c: the relay's side of the outbox */
        sqlite3_stmt *ob[OB_COUNT];
        char *json; /* mark's lists of seqs, kept for the next mark */
        size_t json_cap;
        char *behind_json;
        size_t behind_cap;
};

/* outbox.c: prepare its statements (at open); finalise them and free its
 * buffers (at close). */
int outbox_open(of_appdb *app, char *errstr, size_t errstr_size);
void outbox_close(of_appdb *app);

#endif
