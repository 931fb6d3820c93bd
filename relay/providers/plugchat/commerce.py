"""Z-API commerce content: catalog products, carts and orders, payments. Amounts become
integer minor units (:mod:`relay.providers.money`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Order, OrderItem, Product
from relay.providers.coerce import as_bool, as_e164, as_int, as_str
from relay.providers.fast import clean
from relay.providers.money import from_major
from relay.providers.plugchat.reading import Content, Reader, listed, text


def _party(value: Any) -> str | None:
    text = as_str(value)
    return (as_e164(text) or text) if text else None


def product(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _PRODUCT_KEYS)
    currency = view.get("currencyCode")
    title = text(view, "title")
    return Content(
        kind="product",
        text=title,
        product=Product(
            id=text(view, "productId"),
            retailer_id=text(view, "retailerId"),
            title=title,
            description=text(view, "description"),
            price=from_major(view.get("price"), currency),
            image_url=text(view, "productImage"),
            url=text(view, "url"),
            seller=_party(view.get("businessOwnerJid")),
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


_ITEM_KEYS = frozenset(
    {"productId", "retailerId", "name", "title", "quantity", "price", "value", "currencyCode"}
    | {"isCustomItem"}
)


def _item(obj: Any, currency: Any) -> OrderItem:
    view = clean(obj, _ITEM_KEYS)
    price = view.get("price")
    return OrderItem(
        id=text(view, "productId"),
        retailer_id=text(view, "retailerId"),
        title=text(view, "name", "title"),
        quantity=as_int(view.get("quantity")),
        price=from_major(
            price if price is not None else view.get("value"),
            view.get("currencyCode") or currency,
        ),
        custom=as_bool(view.get("isCustomItem")),
    )


def order_kind(kind: str) -> Reader:
    def read(obj: Any, payload: Mapping[str, Any]) -> Content:
        view = clean(obj, _ORDER_KEYS)
        get = view.get
        currency = get("currency")
        items = [_item(item, currency) for item in listed(view, "products") if type(item) is dict]
        title = text(view, "orderTitle")
        return Content(
            kind=kind,
            text=text(view, "message") or title,
            order=Order(
                id=text(view, "orderId", "orderRequestId"),
                reference_id=text(view, "referenceId"),
                title=title,
                text=text(view, "message"),
                status=text(view, "orderStatus"),
                payment_status=text(view, "paymentStatus"),
                items=items,
                item_count=as_int(get("itemCount")),
                subtotal=from_major(get("subTotal"), currency),
                discount=from_major(get("discount"), currency),
                shipping=from_major(get("shipping"), currency),
                tax=from_major(get("tax"), currency),
                total=from_major(get("total"), currency),
                seller=_party(get("sellerJid")),
                thumbnail_url=text(view, "thumbnailUrl"),
            ),
            known=_ORDER_KEYS,
        )

    return read


_PAYMENT_KEYS = frozenset({"value", "currencyCode"})
_PAYMENT_READ = _PAYMENT_KEYS | {"paymentInfo"}
_PAYMENT_INFO_KEYS = frozenset(
    {"value", "currencyCode", "transactionStatus", "status", "receiverPhone"}
)


def payment(kind: str) -> Reader:
    def read(obj: Any, payload: Mapping[str, Any]) -> Content:
        view = clean(obj, _PAYMENT_READ)
        info = clean(view.get("paymentInfo"), _PAYMENT_INFO_KEYS)
        source = view if view.get("value") is not None else info
        currency = source.get("currencyCode")
        return Content(
            kind=kind,
            order=Order(
                total=from_major(source.get("value"), currency),
                status=text(info, "transactionStatus"),
                payment_status=text(info, "status"),
                seller=_party(info.get("receiverPhone")),
            ),
            known=_PAYMENT_KEYS,
        )

    return read
