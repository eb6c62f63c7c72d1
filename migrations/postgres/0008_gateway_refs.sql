-- The gateway's payment references of each scored payment (Stripe charge and
-- payment intent ids, Adyen pspReference and merchantReference, the
-- merchant's external_transaction_number), written in the same transaction
-- as the decision, so a dispute or fraud report that names the payment finds
-- the decision to label. A reference names one decision per subscriber: a
-- later payment with the same reference (a retried order) takes it over.
CREATE TABLE gateway_refs (
    subscriber_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions (id),
    PRIMARY KEY (subscriber_id, reference)
);
