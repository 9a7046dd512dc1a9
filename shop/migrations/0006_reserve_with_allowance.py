"""shop_reserve also counts a customer's units against a product's per-customer limit.

The same call that reserves the limited stock (0003) now, per line in product-id order: reserves
the units if the product has limited stock (SQLSTATE SL001 when too few are left), then, if the
product has a per-customer limit, adds them to the customer's allowance row with one conditional
upsert (SQLSTATE SL002 when it would pass the limit). Both raise with the refusal's fields as JSON
in DETAIL, which rolls back the whole accept. Racing checkouts of one customer queue on the
allowance row's lock, and the upsert's condition is evaluated on the row as the last one left it,
so no race passes the limit.
"""

from django.db import migrations

FUNCTION = """
DROP FUNCTION IF EXISTS shop_reserve(bigint[], integer[]);
CREATE OR REPLACE FUNCTION shop_reserve(
    ids bigint[], quantities integer[], limited boolean[], limits integer[], buyer text
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    refused record;
    held integer;
BEGIN
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    FOR i IN SELECT u.position FROM unnest(ids) WITH ORDINALITY AS u (id, position) ORDER BY u.id LOOP
        IF limited[i] THEN
            UPDATE shop_product SET reserved = reserved + quantities[i]
             WHERE id = ids[i] AND (stock IS NULL OR stock >= reserved + sold + quantities[i]);
            IF NOT FOUND THEN
                SELECT id, sku, name, GREATEST(stock - reserved - sold, 0) AS units_left INTO refused
                  FROM shop_product WHERE id = ids[i];
                RAISE EXCEPTION USING ERRCODE = 'SL001', MESSAGE = 'out_of_stock',
                    DETAIL = json_build_object('id', refused.id, 'sku', refused.sku, 'name', refused.name,
                                               'requested', quantities[i], 'left', refused.units_left);
            END IF;
        END IF;
        IF limits[i] IS NOT NULL THEN
            held := NULL;
            IF quantities[i] <= limits[i] THEN
                INSERT INTO shop_customerallowance AS a (product_id, customer, units)
                VALUES (ids[i], buyer, quantities[i])
                ON CONFLICT ON CONSTRAINT allowance_one_per_customer
                DO UPDATE SET units = a.units + EXCLUDED.units WHERE a.units + EXCLUDED.units <= limits[i]
                RETURNING a.units INTO held;
            END IF;
            IF held IS NULL THEN
                SELECT p.sku, p.name, COALESCE(a.units, 0) AS already INTO refused
                  FROM shop_product p
                  LEFT JOIN shop_customerallowance a ON a.product_id = p.id AND a.customer = buyer
                 WHERE p.id = ids[i];
                RAISE EXCEPTION USING ERRCODE = 'SL002', MESSAGE = 'per_customer_limit',
                    DETAIL = json_build_object('sku', refused.sku, 'name', refused.name, 'limit', limits[i],
                                               'already', refused.already, 'requested', quantities[i]);
            END IF;
        END IF;
    END LOOP;
    RETURN cardinality(ids);
END
$$;
"""

PREVIOUS = """
DROP FUNCTION IF EXISTS shop_reserve(bigint[], integer[], boolean[], integer[], text);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS)
        from importlib import import_module

        schema_editor.execute(import_module("shop.migrations.0003_reserve_function").FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("shop", "0005_per_customer_limit")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
