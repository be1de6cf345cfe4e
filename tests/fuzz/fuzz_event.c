/* libFuzzer target: event decoding. Any input must give a verdict, the
 * fast path and the general path must give the same one, and a valid
 * OrderPlaced/OrderPaid must survive of_event_format() and decode again to
 * an event that agrees with it. A difference traps, so the fuzzer reports
 * it with the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char r1[OF_REASON_MAX] = "", r2[OF_REASON_MAX] = "";
        of_event e1, e2, again;
        char *text = NULL;
        int rc1, rc2;

        rc1 = of_event_parse(&e1, data, size, r1, sizeof(r1));
        rc2 = of_event_parse_general(&e2, data, size, r2, sizeof(r2));
        if (rc1 != rc2 || strcmp(r1, r2) != 0 ||
            memcmp(&e1, &e2, sizeof(e1)) != 0)
                __builtin_trap();
        if (rc1 == 1 && r1[0] == '\0')
                __builtin_trap(); /* a dead letter always says why */
        if (rc1 != 0 || e1.type == OF_EVENT_OTHER)
                return 0;
        if (e1.id[0] == '\0' || e1.aggregate_id[0] == '\0' ||
            strlen(e1.occurred_at) != OF_TS_LEN || e1.amount < 0 ||
            e1.amount > OF_AMOUNT_MAX)
                __builtin_trap();
        if (of_event_format(&text, &e1) != 0)
                return 0; /* out of memory */
        if (of_event_parse(&again, text, strlen(text), r1, sizeof(r1)) != 0 ||
            !of_event_agrees(&e1, &again) || strcmp(e1.id, again.id) != 0)
                __builtin_trap();
        free(text);
        return 0;
}
