"""Seed: "Using Ductape Components" — every ctx connector call.

Calls made directly in the handler (not inside ``ctx.step``) are steps too, named after
their event (``create-charge``, ``find-by-customer``…) unless given ``tag=``.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    # --- ctx.action - API Calls
    charge = await ctx.action.run(
        {
            "app": "stripe",
            "event": "create-charge",
            "input": {"body": {"amount": 1000, "currency": "usd"}},
        }
    )
    data = await ctx.action.run(
        {
            "app": "external-api",
            "event": "fetch-data",
            "input": {
                "body": {"query": ctx.input.query},
                "headers": {"X-Request-ID": ctx.workflow_id},
            },
            "retries": 3,
            "timeout": 10000,
        }
    )

    # --- ctx.database - Database Operations
    record = await ctx.database.insert(
        {
            "database": "orders-db",
            "event": "create-order",
            "data": {
                "customer_id": ctx.input.customerId,
                "total": ctx.input.amount,
                "items": ctx.input.items,
            },
        }
    )
    orders = await ctx.database.query(
        {
            "database": "orders-db",
            "event": "find-by-customer",
            "params": {"customerId": ctx.input.customerId},
        }
    )
    sales = await ctx.database.execute(
        {
            "database": "analytics-db",
            "event": "aggregate-sales",
            "input": {"startDate": ctx.input["from"], "endDate": ctx.input.to},
        }
    )
    await ctx.database.update(
        {
            "database": "orders-db",
            "event": "update-status",
            "where": {"id": ctx.input.orderId},
            "data": {"status": "shipped"},
        }
    )
    await ctx.database.delete(
        {"database": "orders-db", "event": "remove-order", "where": {"id": ctx.input.orderId}}
    )

    # --- ctx.notification - Send Notifications
    await ctx.notification.email(
        {
            "notification": "transactional",
            "event": "order-confirmation",
            "recipients": [ctx.input.email],
            "subject": {"orderId": ctx.input.orderId},
            "template": {
                "orderId": ctx.input.orderId,
                "items": ctx.input.items,
                "total": ctx.input.total,
            },
        }
    )
    await ctx.notification.sms(
        {
            "notification": "alerts",
            "event": "verification-code",
            "phones": [ctx.input.phone],
            "message": {"code": ctx.input.code},
        }
    )
    await ctx.notification.push(
        {
            "notification": "mobile-app",
            "event": "order-shipped",
            "tokens": [ctx.input.deviceToken],
            "title": {"status": "Shipped"},
            "body": {"trackingNumber": ctx.input.trackingNumber},
            "data": {"orderId": ctx.input.orderId},
        }
    )
    await ctx.notification.send(
        {
            "notification": "multi-channel",
            "event": "urgent-alert",
            "input": {
                "email": {"recipients": [ctx.input.email]},
                "sms": {"phones": [ctx.input.phone]},
                "push": {"tokens": [ctx.input.token]},
            },
            "retries": 3,
        }
    )

    # --- ctx.storage - File Operations
    uploaded = await ctx.storage.upload(
        {
            "storage": "documents",
            "event": "upload-invoice",
            "input": {
                "buffer": ctx.input.fileData,
                "fileName": f"invoice-{ctx.input.orderId}.pdf",
                "mimeType": "application/pdf",
            },
            "retries": 2,
        }
    )
    ctx.log.info(f"File URL: {uploaded.url}")
    ctx.log.info(f"File key: {uploaded.file_key}")
    file = await ctx.storage.download(
        {
            "storage": "templates",
            "event": "get-template",
            "input": {"file_key": "invoice-template.pdf"},
        }
    )
    ctx.log.info("Downloaded", {"content": file.content, "size": file.size})
    await ctx.storage.delete(
        {"storage": "temp-files", "event": "cleanup", "input": {"file_key": ctx.input.tempFileKey}}
    )

    # --- ctx.messaging - Message Broker (event = "broker-tag:topic-tag")
    await ctx.messaging.produce(
        {
            "event": "order-events:order-created",
            "message": {
                "orderId": ctx.input.orderId,
                "customerId": ctx.input.customerId,
                "items": ctx.input.items,
                "timestamp": ctx.transform.now(),
            },
        }
    )

    # --- ctx.quota - Rate Limiting: check quota before proceeding
    quota_result = await ctx.quota.execute(
        {"quota": "api-rate-limit", "input": {"key": ctx.input.userId}, "timeout": 5000}
    )
    if not quota_result.allowed:
        # Recorded as a FAIL step on $Step{api-rate-limit}{allowed} != true: a refused
        # quota fails the run with this message (branch_overrides records both arms).
        raise RuntimeError("Rate limit exceeded")

    # --- ctx.fallback - Failure Handling
    result = await ctx.fallback.execute(
        {
            "fallback": "payment-fallback",
            "input": {"amount": ctx.input.amount, "method": ctx.input.paymentMethod},
            "timeout": 30000,
        }
    )
    return {
        "charge": charge.id,
        "data": data,
        "order": record.id,
        "orders": orders.rows,
        "sales": sales.row,
        "upload": uploaded.url,
        "payment": result,
    }


workflow = workflows.define(
    product="acme",
    tag="component-calls",
    name="Using components",
    branch_overrides={"api-rate-limit": {"allowed": True}},
    handler=handler,
)


# The graph component 'social-graph' declares its tables and its Cypher operations (its
# events); each environment's config says where its LadybugDB file lives (an admin's
# `{"path": "acme/social.lbug"}` under TRELLIS_GRAPH_ROOT, or the default
# <product>/<environment>/social-graph.lbug). The seed's query passes `depth`: a Cypher
# path bound cannot be a parameter, so the declared query fixes it (1..2 hops).
SOCIAL_GRAPH_EVENTS: dict[str, Any] = {
    "schema": {
        "nodes": {
            "User": {
                "name": "STRING",
                "email": "STRING",
                "verified": "BOOLEAN",
                "influence": "INT64",
            }
        },
        "relationships": {
            "FOLLOWS": {"from": "User", "to": "User", "properties": {"since": "STRING"}}
        },
    },
    "find-connections": {
        "op": "query",
        "cypher": "MATCH (u:User {id: $userId})-[:FOLLOWS*1..2]->(f:User) WHERE f.id <> u.id "
        "RETURN DISTINCT f.id AS id, f.name AS name ORDER BY id",
    },
    "compute-influence": {
        "op": "execute",
        "cypher": "MATCH (u:User {id: $userId}) OPTIONAL MATCH (u)<-[:FOLLOWS]-(f:User) "
        "WITH u, count(f) AS followers SET u.influence = followers "
        "RETURN u.id AS id, followers AS influence",
    },
}


async def rate_limited(ctx: Any) -> dict[str, Any]:
    """Seed: "ctx.quota - Rate Limiting", on its own: a refused quota fails the run."""
    # Check quota before proceeding
    quota_result = await ctx.quota.execute(
        {"quota": "api-rate-limit", "input": {"key": ctx.input.userId}, "timeout": 5000}
    )
    if not quota_result.allowed:
        raise Exception("Rate limit exceeded")
    validation = await ctx.step(
        "validate",
        lambda: ctx.action.run(
            app="orders-api", event="validate-order", input={"body": {"orderId": ctx.input.orderId}}
        ),
    )
    return {"validated": validation.ok, "remaining": quota_result.remaining}


quota_workflow = workflows.define(
    product="acme",
    tag="rate-limited",
    name="Rate-limited call",
    branch_overrides={"api-rate-limit": {"allowed": True}},
    handler=rate_limited,
)


async def graph(ctx: Any) -> dict[str, Any]:
    """Seed: "ctx.graph - Graph Database", on the 'social-graph' component above."""
    # Create node
    node = await ctx.graph.createNode(
        {
            "graph": "social-graph",
            "labels": ["User"],
            "properties": {"name": ctx.input.name, "email": ctx.input.email},
        }
    )
    # Update node
    await ctx.graph.update_node(
        {"graph": "social-graph", "id": node.id, "properties": {"verified": True}}
    )
    # Create relationship
    await ctx.graph.create_relationship(
        {
            "graph": "social-graph",
            "from": ctx.input.userId,
            "to": ctx.input.friendId,
            "type": "FOLLOWS",
            "properties": {"since": ctx.transform.now()},
        }
    )
    # Query
    connections = await ctx.graph.query(
        {
            "graph": "social-graph",
            "action": "find-connections",
            "params": {"userId": ctx.input.userId, "depth": 2},
        }
    )
    # Execute custom action
    influence = await ctx.graph.execute(
        {
            "graph": "social-graph",
            "action": "compute-influence",
            "input": {"userId": ctx.input.userId},
        }
    )
    # Delete node
    await ctx.graph.delete_node({"graph": "social-graph", "id": ctx.input.nodeId})
    # Delete relationship
    await ctx.graph.deleteRelationship({"graph": "social-graph", "id": ctx.input.relationshipId})
    return {"node": node.id, "connections": connections, "influence": influence}


graph_workflow = workflows.define(
    product="acme", tag="social-graph", name="Graph database", handler=graph
)
