"""The billing domain: services over the database, no FastAPI imports.

Host code reaches it through ``PaymentsRouter.service()``; see :class:`.service.PaymentsService`.
"""
