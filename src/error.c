/* of_errf(): the one way messages get into an errstr buffer. */
#include <stdarg.h>
#include <stdio.h>

#include "orderflow/error.h"

int of_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (errstr && errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return OF_ERROR;
}
