"""orders_accept says why it placed no order: which skus it did not find, which quantities are over
the per-order limit.

The accept (orders/checkout.py) sent a basket the function could not place (an unknown sku, a
quantity over the limit) to an ORM transaction that re-read the catalogue to word the 400: the
ORM twin docs/writes.md removed. Now the function takes the limit (`most`), places nothing when a
quantity passes it, and returns a row for every line of the basket, found or not, in the
basket's order, with two more columns: `unknown` (no active product has that sku; its product
columns are null) and `over_limit` (a found product's quantity is above `most`). Python words the
400 from them, without a second transaction.

The rest is 0009's: the order, its lines and its first event are written only when every sku was
found, every quantity is within the limit and every product is on sale at `placed_at`; then
shop_reserve reserves the limited units and the customer's allowance (SL001/SL002 roll the whole
statement back).

The previous signature (six arguments, 0009) stays: `python -m deploy` migrates first and then
rolls the services, so for minutes the previous image's web tasks still call it, against these
tables, which have not changed. The new function is an overload beside it; a later release drops
the old one once no task of the previous image runs (tests/test_migrations.py holds both callable).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION orders_accept(
    placed_order jsonb, skus text[], quantities integer[], placed_at timestamptz, detail text, buyer text,
    most integer
) RETURNS TABLE (
    product_id bigint, sku varchar, name varchar, price numeric, stock integer,
    sale_starts_at timestamptz, per_customer_limit integer, total numeric, event_id bigint,
    reserved integer, unknown boolean, over_limit boolean
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH basket (sku, quantity, position) AS (
        SELECT * FROM unnest(skus, quantities) WITH ORDINALITY
    ), line AS (
        SELECT p.id, p.sku, p.name, p.price, p.stock, p.sale_starts_at, p.per_customer_limit,
               b.quantity, b.position
          FROM basket b JOIN shop_product p ON p.sku = b.sku AND p.active
    ), placed AS (
        INSERT INTO orders_order
        SELECT r.*
          FROM (SELECT SUM(l.price * l.quantity) AS total FROM line l
                HAVING COUNT(*) = cardinality(skus)
                   AND BOOL_AND(l.quantity <= most)
                   AND BOOL_AND(l.sale_starts_at IS NULL OR l.sale_starts_at <= placed_at)) s,
               LATERAL jsonb_populate_record(
                   NULL::orders_order, placed_order || jsonb_build_object('total', s.total)) r
        RETURNING orders_order.id, orders_order.total, orders_order.status
    ), items AS (
        INSERT INTO orders_orderitem
            (order_id, product_id, sku, name, quantity, unit_price, stock_reserved, counted_for_customer)
        SELECT placed.id, line.id, line.sku, line.name, line.quantity, line.price,
               line.stock IS NOT NULL, line.per_customer_limit IS NOT NULL
          FROM placed CROSS JOIN line ORDER BY line.position
    ), logged AS (
        INSERT INTO orders_orderevent (order_id, from_status, to_status, at, detail)
        SELECT placed.id, '', placed.status, placed_at, detail FROM placed
        RETURNING orders_orderevent.id
    )
    SELECT line.id, b.sku::varchar, line.name, line.price, line.stock, line.sale_starts_at,
           line.per_customer_limit, (SELECT placed.total FROM placed), (SELECT logged.id FROM logged),
           -- Last, once the order is written: the limited units and the customer's allowance.
           (SELECT shop_reserve(array_agg(l.id), array_agg(l.quantity), array_agg(l.stock IS NOT NULL),
                                array_agg(l.per_customer_limit), buyer)
              FROM placed CROSS JOIN line l
             WHERE l.stock IS NOT NULL OR l.per_customer_limit IS NOT NULL),
           line.id IS NULL, line.id IS NOT NULL AND b.quantity > most
      FROM basket b LEFT JOIN line ON line.position = b.position
     ORDER BY b.position;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS orders_accept(jsonb, text[], integer[], timestamptz, text, text, integer);"


class Migration(migrations.Migration):
    dependencies = [("orders", "0011_pay_function")]

    operations = [migrations.RunSQL(FUNCTION, DROP, elidable=False)]
