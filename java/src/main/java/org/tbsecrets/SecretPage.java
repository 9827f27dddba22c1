package org.tbsecrets;

import java.util.List;

/**
 * One page of a listing, in name order.
 *
 * @param items the secrets of this page
 * @param total how many secrets match the filter, over all pages
 * @param hasMore whether entries follow this page
 */
public record SecretPage(List<SecretInfo> items, long total, boolean hasMore) {
    /**
     * Creates a page, copying the items into an unmodifiable list.
     *
     * @param items the secrets of this page
     * @param total how many secrets match the filter, over all pages
     * @param hasMore whether entries follow this page
     */
    public SecretPage {
        items = List.copyOf(items);
    }
}
