package org.tbsecrets;

import java.util.List;

/**
 * One page of a listing, in name order.
 *
 * @param items the secrets of this page
 * @param total how many secrets match the filter, over all pages
 * @param hasMore whether entries follow this page
 * @param nextAfter the cursor of the next page (the last name of this one) when entries follow,
 *     else {@code null}: pass it as {@code after} to
 *     {@link SecretOperations#list(String, String, String, int)}
 */
public record SecretPage(List<SecretInfo> items, long total, boolean hasMore, String nextAfter) {
    /**
     * Creates a page, copying the items into an unmodifiable list.
     *
     * @param items the secrets of this page
     * @param total how many secrets match the filter, over all pages
     * @param hasMore whether entries follow this page
     * @param nextAfter the cursor of the next page, or {@code null}
     */
    public SecretPage {
        items = List.copyOf(items);
    }

    /**
     * Creates a page without a cursor (as before keyset paging).
     *
     * @param items the secrets of this page
     * @param total how many secrets match the filter, over all pages
     * @param hasMore whether entries follow this page
     */
    public SecretPage(List<SecretInfo> items, long total, boolean hasMore) {
        this(items, total, hasMore, null);
    }
}
