"""Z-API commerce content: catalog products, carts and orders, payments. Amounts become
integer minor units (:mod:`relay.providers.money`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Order, OrderItem, Product
from relay.providers.coerce import as_bool, as_e164, as_int, as_str
from relay.providers.money import from_major
from relay.providers.plugchat.reading import Content, Reader
from relay.providers.reads import Reads


def _party(value: Any) -> str | None:
    text = as_str(value)
    return (as_e164(text) or text) if text else None


def product(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    get, get_str = r.get, r.get_str
    currency = get(obj, "currencyCode")
    title = get_str(obj, "title")
    return Content(
        kind="product",
        text=title,
        product=Product(
            id=get_str(obj, "productId"),
            retailer_id=get_str(obj, "retailerId"),
            title=title,
            description=get_str(obj, "description"),
            price=from_major(get(obj, "price"), currency),
            image_url=get_str(obj, "productImage"),
            url=get_str(obj, "url"),
            seller=_party(get(obj, "businessOwnerJid")),
        ),
        known=_PRODUCT_KEYS,
    )


_PRODUCT_KEYS = frozenset(
    {
        "productId",
        "retailerId",
        "title",
        "description",
        "price",
        "currencyCode",
        "productImage",
        "url",
        "businessOwnerJid",
    }
)


_ORDER_KEYS = frozenset(
    {
        "orderId",
        "orderRequestId",
        "referenceId",
        "orderTitle",
        "message",
        "orderStatus",
        "paymentStatus",
        "itemCount",
        "currency",
        "total",
        "subTotal",
        "discount",
        "shipping",
        "tax",
        "sellerJid",
        "thumbnailUrl",
        "products",
    }
)


def order_kind(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
        get, get_str = r.get, r.get_str
        currency = get(obj, "currency")
        items = [
            OrderItem(
                id=get_str(item, "productId"),
                retailer_id=get_str(item, "retailerId"),
                title=get_str(item, "name", "title"),
                quantity=as_int(get(item, "quantity")),
                price=from_major(
                    get(item, "price") if get(item, "price") is not None else get(item, "value"),
                    get(item, "currencyCode") or currency,
                ),
                custom=as_bool(get(item, "isCustomItem")),
            )
            for item in r.get_list(obj, "products")
            if isinstance(item, dict)
        ]
        title = get_str(obj, "orderTitle")
        return Content(
            kind=kind,
            text=get_str(obj, "message") or title,
            order=Order(
                id=get_str(obj, "orderId", "orderRequestId"),
                reference_id=get_str(obj, "referenceId"),
                title=title,
                text=get_str(obj, "message"),
                status=get_str(obj, "orderStatus"),
                payment_status=get_str(obj, "paymentStatus"),
                items=items,
                item_count=as_int(get(obj, "itemCount")),
                subtotal=from_major(get(obj, "subTotal"), currency),
                discount=from_major(get(obj, "discount"), currency),
                shipping=from_major(get(obj, "shipping"), currency),
                tax=from_major(get(obj, "tax"), currency),
                total=from_major(get(obj, "total"), currency),
                seller=_party(get(obj, "sellerJid")),
                thumbnail_url=get_str(obj, "thumbnailUrl"),
            ),
            known=_ORDER_KEYS,
        )

    return read


def payment(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
        get, get_str = r.get, r.get_str
        info = r.get_obj(obj, "paymentInfo")
        source = obj if get(obj, "value") is not None else info
        currency = get(source, "currencyCode")
        return Content(
            kind=kind,
            order=Order(
                total=from_major(get(source, "value"), currency),
                status=get_str(info, "transactionStatus"),
                payment_status=get_str(info, "status"),
                seller=_party(get(info, "receiverPhone")),
            ),
            known=frozenset({"value", "currencyCode"}),
        )

    return read


# Every key these readers look for (the fast path's key check takes them as known).
KEYS = (
    _PRODUCT_KEYS
    | _ORDER_KEYS
    | {"name", "quantity", "value", "isCustomItem", "price", "currencyCode", "paymentInfo"}
    | {"transactionStatus", "status", "receiverPhone"}
)
