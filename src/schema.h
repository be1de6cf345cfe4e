/* Private to the SQLite modules: the schema files schema/readmodel.sql
 * and schema/appdb.sql as NUL-terminated text, compiled once into the
 * library from build/gen/schema.c (the Makefile writes it). */
#ifndef ORDERFLOW_SCHEMA_H
#define ORDERFLOW_SCHEMA_H

extern const char of_schema_readmodel[]; /* schema/readmodel.sql */
extern const char of_schema_appdb[];     /* schema/appdb.sql */

#endif
