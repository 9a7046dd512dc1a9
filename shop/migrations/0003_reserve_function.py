"""shop_reserve(ids, quantities): the checkout's stock reservation as one PL/pgSQL call (PostgreSQL only).

orders/checkout.py's one-statement accept calls it once the order is written, so a basket with
limited products is reserved and written in one round trip and a hot product's row is locked only
from its UPDATE to the statement's own commit. Rows are taken in id order (shop/stock.py takes
them in the same order: no deadlock). A product with too few units left raises SQLSTATE SL001 with
the product's sku, name, the units asked and the units left (JSON in DETAIL), which rolls back the whole statement: the order, its lines,
its event and any unit already reserved. Other databases keep the transaction of shop/stock.py.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION shop_reserve(ids bigint[], quantities integer[]) RETURNS integer
LANGUAGE plpgsql STRICT AS $$
DECLARE
    i integer;
    refused record;
BEGIN
    FOR i IN SELECT u.position FROM unnest(ids) WITH ORDINALITY AS u (id, position) ORDER BY u.id LOOP
        UPDATE shop_product SET reserved = reserved + quantities[i]
         WHERE id = ids[i] AND (stock IS NULL OR stock >= reserved + sold + quantities[i]);
        IF NOT FOUND THEN
            SELECT id, sku, name, GREATEST(stock - reserved - sold, 0) AS units_left INTO refused
              FROM shop_product WHERE id = ids[i];
            RAISE EXCEPTION USING ERRCODE = 'SL001', MESSAGE = 'out_of_stock',
                DETAIL = json_build_object('id', refused.id, 'sku', refused.sku, 'name', refused.name,
                                           'requested', quantities[i], 'left', refused.units_left);
        END IF;
    END LOOP;
    RETURN cardinality(ids);
END
$$;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS shop_reserve(bigint[], integer[])")


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_stock")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
