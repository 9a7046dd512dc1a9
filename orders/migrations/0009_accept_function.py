"""orders_accept: the async accept's one statement, as a PL/pgSQL function whose plan is kept.

The accept was one data-modifying CTE sent as text: PostgreSQL planned it on every call, and the
plan was half of the database's work per accept (pgbench, the same statement, 2 clients: 580
calls/s sent as text, 2,070 prepared). Prepared statements would pin every web connection to one
database connection behind RDS Proxy, so the statement lives in a function instead: PL/pgSQL
keeps its statements' plans for the life of the session, and the call itself is trivial to plan
(1,075 calls/s sent as text). See docs/flash-sale-path.md.

What it does is what the CTE did: join the basket to the active catalogue; insert the order,
its total summed from catalogue prices, only when every sku was found and every product is on
sale at `placed_at` (otherwise no order, no lines, no event); its lines and its first event;
then reserve the limited units and the customer's allowance with shop_reserve (which raises
SL001/SL002 and rolls the whole statement back). It returns every line found, with the order's
total and its event's id (both null when nothing was written).

The order's row comes as JSON and is read with the table's own row type
(jsonb_populate_record), so a column added to orders_order later needs no new function: the
caller sends every concrete field of the model (orders/checkout.py).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION orders_accept(
    placed_order jsonb, skus text[], quantities integer[], placed_at timestamptz, detail text, buyer text
) RETURNS TABLE (
    product_id bigint, sku varchar, name varchar, price numeric, stock integer,
    sale_starts_at timestamptz, per_customer_limit integer, total numeric, event_id bigint,
    reserved integer
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
    SELECT line.id, line.sku, line.name, line.price, line.stock, line.sale_starts_at,
           line.per_customer_limit, (SELECT placed.total FROM placed), (SELECT logged.id FROM logged),
           -- Last, once the order is written: the limited units and the customer's allowance.
           (SELECT shop_reserve(array_agg(l.id), array_agg(l.quantity), array_agg(l.stock IS NOT NULL),
                                array_agg(l.per_customer_limit), buyer)
              FROM placed CROSS JOIN line l
             WHERE l.stock IS NOT NULL OR l.per_customer_limit IS NOT NULL)
      FROM line ORDER BY line.position;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS orders_accept(jsonb, text[], integer[], timestamptz, text, text);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_notifications"),
        ("shop", "0006_reserve_with_allowance"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
