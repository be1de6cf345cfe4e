/* Printing the rows of a cursor (cursor.h) for `orderflow query` and
 * `orderflow outbox list`: an aligned table for people, JSON Lines for
 * programs. Which rows and which SQL is the caller's business. */
#ifndef ORDERFLOW_PRINT_H
#define ORDERFLOW_PRINT_H

#include <stddef.h>
#include <stdio.h>

#include "orderflow/cursor.h"

/* The table cuts a blob (a dead letter's key and value) to this many
 * columns, "..." included; JSON Lines always print it whole. */
#define OF_PRINT_BLOB_MAX 60

/* Print every row of cur to f as JSON Lines: one object per row keyed by
 * the column names; integers as numbers, NULL as null, text and blobs as
 * strings, each byte that is not part of valid UTF-8 as \ufffd. Returns
 * 0, or the cursor's error (in errstr). */
int of_print_json_lines(FILE *f, of_cursor *cur, char *errstr,
                        size_t errstr_size);

/* Print a header row and every row of cur (the first max_rows; 0: all)
 * to f, each cell padded to its
 * column's width: integers to the right, the rest to the left, NULL as an
 * empty cell; control characters and bytes that are not UTF-8 as \n, \t,
 * \r or \xHH. Reads every row first (widths need them all). Returns 0, or
 * the cursor's error or OF_ERROR when out of memory (in errstr). */
int of_print_table(FILE *f, of_cursor *cur, size_t max_rows, char *errstr,
                   size_t errstr_size);

#endif
