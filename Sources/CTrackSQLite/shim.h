#include <sqlite3.h>

/* sqlite3_db_config is variadic, which Swift cannot call: one integer option. */
static inline int track_db_config_int(sqlite3 *db, int op, int value) {
    int current = -1;
    int code = sqlite3_db_config(db, op, value, &current);
    return code == SQLITE_OK ? current : -1;
}
