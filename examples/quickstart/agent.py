"""The quickstart's agent: two tools, guarded by the policy of the backend it reports to."""

from hashed import Hashed

with Hashed() as hashed:  # reads .hashed/ (hashed init --connect wrote the backend's address and key there)

    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str:
        return f"sent {amount} to {to}"

    @hashed.guard("delete_customer")
    def delete_customer(customer_id: str) -> str:
        return "deleted"

    print(transfer_money("acct-9", 50))
    print(transfer_money("acct-9", 5000))
    print(delete_customer("c-42"))
# leaving the block ships what is left to the backend
