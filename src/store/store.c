/* Backend-independent parts of the store interface (see store.h): closing a
 * store through its vtable and freeing the lists operations return. Owns no
 * state; must not include any backend's headers. Cleanup functions leave
 * their argument zeroed, so calling them twice is harmless. */
#include "store/store.h"
#include <stdlib.h>
#include <string.h>

void nb_store_close(struct nb_store *s)
{
    if (!s) return;
    s->ops->close(s->impl);
    free(s);
}

void nb_queue_list_cleanup(struct nb_queue_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].metadata);
    }
    free(l->items);
    free(l->next_marker);
    memset(l, 0, sizeof(*l));
}

void nb_msg_list_cleanup(struct nb_msg_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->items[i].text);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void nb_table_list_cleanup(struct nb_table_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->next_name);
    memset(l, 0, sizeof(*l));
}

void nb_entity_row_cleanup(struct nb_entity_row *r)
{
    if (!r) return;
    free(r->pk);
    free(r->rk);
    free(r->data);
    memset(r, 0, sizeof(*r));
}

void nb_entity_rows_cleanup(struct nb_entity_rows *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) nb_entity_row_cleanup(&l->items[i]);
    free(l->items);
    free(l->next_pk);
    free(l->next_rk);
    memset(l, 0, sizeof(*l));
}
