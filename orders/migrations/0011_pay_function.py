"""orders_pay: processing → paid in one statement, the order's limited units settled in it.

Every payment ends here (orders.transitions.mark_paid). It was one statement only for an order
that held no limited stock; an order of the hot product took an ORM transaction instead (the
twin docs/writes.md removed). Now every order takes this function, which does what that
transaction did, in one round trip:

- the compare-and-set: processing → paid with the charge's id and time and no lease, only for the
  attempt holding the claim's fencing token (`token`); nothing is written otherwise, and it
  returns false (the caller raises TransitionConflict);
- the move's OrderEvent, whose detail names the units sold ("charged (ch_1); sold 2 × sneakers",
  the lines in their id order, cut to 255 characters);
- last, each reserved line's units turn from reserved into sold on its product's row, in
  product-id order (the order shop_reserve and shop/stock.py lock rows in: no deadlock), so a hot
  product's row is locked only from its UPDATE to the statement's commit. reserved + sold is
  unchanged, so no unit is sold twice: the no-oversell check stays with the reservation.

PostgreSQL only, as the shop is.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION orders_pay(
    paid_order uuid, token integer, charge text, settled_at timestamptz, note text
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    units_sold text;
    line record;
BEGIN
    UPDATE orders_order
       SET status = 'paid', updated_at = settled_at, charge_id = charge, paid_at = settled_at,
           lease_expires_at = NULL
     WHERE id = paid_order AND status = 'processing' AND claim_token = token;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT string_agg(i.quantity || ' × ' || i.sku, ', ' ORDER BY i.id) INTO units_sold
      FROM orders_orderitem i
     WHERE i.order_id = paid_order AND i.stock_reserved;
    INSERT INTO orders_orderevent (order_id, from_status, to_status, at, detail)
    VALUES (paid_order, 'processing', 'paid', settled_at,
            left(CASE WHEN units_sold IS NULL THEN note ELSE note || '; sold ' || units_sold END, 255));
    -- Last: a product's row is locked from here to the commit only.
    FOR line IN SELECT i.product_id, i.quantity
                  FROM orders_orderitem i
                 WHERE i.order_id = paid_order AND i.stock_reserved
                 ORDER BY i.product_id LOOP
        UPDATE shop_product p SET reserved = p.reserved - line.quantity, sold = p.sold + line.quantity
         WHERE p.id = line.product_id;
    END LOOP;
    RETURN true;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS orders_pay(uuid, integer, text, timestamptz, text);"


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0010_lean_accept_indexes"),
        ("shop", "0006_reserve_with_allowance"),
    ]

    operations = [migrations.RunSQL(FUNCTION, DROP, elidable=False)]
