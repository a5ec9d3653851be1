#!/usr/bin/env python3
"""Generate peftops' own synthetic demo text-classification datasets.

Two domains are written, each as stratified train/validation/test CSV files with the columns
``text,label``:

* ``finance``: customer messages to an online bank's support team (8 intents).
* ``healthcare``: patient-portal messages to a clinic, for triage (7 intents).

Every message is composed from hand-written templates (authored for peftops, not taken from any
existing dataset), slot fills, optional openers/closers/context sentences and a few "register"
tweaks (lowercase, missing final punctuation). Generation is fully deterministic: the same
``--seed`` always produces byte-identical files. Healthcare texts never contain names, contact
details, identifiers or dates (only small numbers such as doses or temperatures).

Usage::

    python scripts/make_demo_data.py [--out data] [--seed 13]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))

MIN_CHARS, MAX_CHARS = 10, 600
MIN_WORDS, MAX_WORDS = 3, 60

# Probabilities of the register tweaks / optional parts.
P_OPENER = 0.55
P_CLOSER = 0.5
P_LOWER_AFTER_OPENER = 0.65
P_CONTEXT_FIRST = 0.5
P_LOWERCASE = 0.08
P_TEXTSPEAK = 0.35
P_NO_FINAL_PUNCT = 0.12
# Number of extra context / follow-up sentences: (count, cumulative probability).
EXTRA_COUNTS = ((1, 0.25), (2, 0.37), (3, 0.43))

# --------------------------------------------------------------------------------------------
# Finance: customer messages to an online bank
# --------------------------------------------------------------------------------------------

# fmt: off

FIN_OPENERS = (
    "Hi!", "Hello.", "Morning!", "Hi team!",
    "Hi,", "Hello,", "Hello team,", "Hi there,", "Good morning,", "Good afternoon,",
    "Good evening,", "Hey,", "Dear support,", "Hi support team,", "Hi again,", "Hello there,",
)
FIN_CLOSERS = (
    "Thanks.", "Thanks!", "Thank you.", "Please help asap.", "Cheers.", "Appreciate it.",
    "Thanks in advance.", "Any help appreciated.", "Kind regards.", "Please get back to me today.",
    "This is really frustrating.", "Thank you for your help.", "Please sort this out.",
    "Looking forward to your reply.", "Many thanks.",
)
FIN_GENERIC_CONTEXT = (
    "I've been a customer for {years} years.", "I'm using {device}.",
    "I have a joint account with my partner.",
)
FIN_GENERIC_FOLLOWUPS = (
    "This is the second time I'm writing about this.", "I'd appreciate a quick reply.",
    "I tried the chat bot but it didn't help.", "Nobody answered when I tried calling.",
    "I've been waiting on hold for ages.",
)

FIN_SLOTS: dict[str, tuple[str, ...]] = {
    "merchant": (
        "Amazon", "Tesco", "Uber", "Netflix", "Spotify", "a petrol station", "Airbnb",
        "Booking.com", "Zara", "the Apple Store", "Steam", "Deliveroo", "a local cafe", "IKEA",
        "eBay", "Lidl", "Sainsbury's", "a pharmacy", "H&M", "a restaurant", "Starbucks",
        "an online shop", "Decathlon", "Aldi", "Currys", "Etsy", "a hotel", "a taxi company",
    ),
    "airline": ("Ryanair", "easyJet", "Lufthansa", "KLM", "Vueling", "Wizz Air", "TAP"),
    "card": (
        "debit card", "credit card", "card", "virtual card", "Visa card", "Mastercard",
        "physical card", "business card", "joint account card",
    ),
    "when": (
        "yesterday", "this morning", "last night", "on Saturday", "two days ago", "earlier today",
        "last week", "on Monday", "over the weekend", "an hour ago", "on Friday evening",
        "a few days ago",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the 1st", "the 15th"),
    "duration": (
        "3 days", "a week", "over a week", "5 working days", "two days", "48 hours",
        "more than 10 days", "since Tuesday", "four days", "nearly two weeks",
    ),
    "country": (
        "Spain", "France", "the US", "Japan", "Thailand", "Portugal", "Mexico", "Poland", "Italy",
        "Turkey", "Canada", "Greece", "Germany", "Croatia", "Morocco", "Vietnam",
    ),
    "city": (
        "Lisbon", "Madrid", "Paris", "Berlin", "New York", "Rome", "Bangkok", "Prague",
        "Amsterdam", "Dublin", "Barcelona", "Krakow", "Tokyo", "Athens",
    ),
    "place_lost": (
        "on the bus", "at the gym", "in a bar", "at the train station", "at a festival",
        "on the tube", "in a taxi", "at the airport", "in a shopping centre", "at a concert",
    ),
    "currency": (
        "euros", "US dollars", "yen", "Swiss francs", "zloty", "Thai baht", "Turkish lira",
        "Canadian dollars", "pesos", "Czech koruna",
    ),
    "cur_code": ("GBP", "EUR", "USD", "JPY", "CHF", "PLN", "CAD", "SEK", "AUD"),
    "recipient": (
        "my landlord", "my sister", "a friend", "my mum", "my other bank account", "a supplier",
        "my brother", "my accountant", "a seller online", "my flatmate", "my builder", "my dad",
        "my savings account", "a colleague",
    ),
    "biller": (
        "my old gym", "my phone provider", "my previous energy supplier",
        "a magazine subscription", "my car insurance company", "a streaming service",
        "my broadband provider", "a charity", "my old mobile network", "the water company",
        "a meal kit company", "my former landlord", "a dating app", "a gym",
    ),
    "device": (
        "the iPhone app", "the Android app", "web banking", "the app on my tablet",
        "the app on my new phone", "the website on my laptop", "the app on my Samsung",
    ),
    "phone": ("iPhone", "Android phone", "new phone", "tablet", "Samsung", "Pixel", "work phone"),
    "app": ("the app", "the mobile app", "online banking", "the banking app", "my online banking"),
    "shop": (
        "Amazon", "Zara", "IKEA", "eBay", "H&M", "Currys", "Decathlon", "Etsy", "an online shop",
        "ASOS", "Argos", "John Lewis", "a furniture store", "Uniqlo",
    ),
    "subscription": (
        "Netflix", "Spotify", "Disney+", "a fitness app", "a news site", "Audible",
        "a cloud storage service", "a VPN service", "a language learning app",
    ),
    "wallet": ("Apple Pay", "Google Pay", "Samsung Pay", "my phone wallet", "PayPal"),
    "cryptic": (
        "PAYPAL *XJ SERVICES", "SQ *BLUEBIRD", "AMZN MKTP", "GOOGLE *SERVICES", "APL*ITUNES",
        "SP DIGITAL LTD", "CRV*GLOBALPAY", "WWW.BILLHELP.CO", "PP*NEXUSWEB", "ZTL*MEDIA SUBS",
        "TRN*ONLINEPAY",
    ),
    "fee_reason": (
        "an international transfer", "a cash withdrawal", "card replacement",
        "a foreign transaction", "an account upgrade", "going overdrawn",
    ),
    "years": ("2", "3", "5", "6", "8", "10", "12"),
}


def _fin_amount(rng: random.Random) -> str:
    """A realistic money amount such as '£42.10', '$250' or '120 EUR'."""
    value = rng.choice((rng.randint(3, 99), rng.randint(100, 999), rng.randint(1000, 2500)))
    with_pence = rng.random() < 0.45
    number = f"{value:,}.{rng.randint(0, 99):02d}" if with_pence else f"{value:,}"
    style = rng.randrange(4)
    if style == 0:
        return f"£{number}"
    if style == 1:
        return f"${number}"
    if style == 2:
        return f"€{number}"
    return f"{number} {rng.choice(('EUR', 'GBP', 'USD'))}"


def _fin_last4(rng: random.Random) -> str:
    return f"{rng.randint(0, 9999):04d}"


FIN_SLOT_FUNCS: dict[str, Callable[[random.Random], str]] = {
    "amount": _fin_amount,
    "last4": _fin_last4,
}

FINANCE: dict[str, dict[str, tuple[str, ...]]] = {
    "card_lost_or_stolen": {
        "templates": (
            "I think I lost my {card} somewhere {when}. Can you block it?",
            "My wallet was stolen {place_lost} and my {card} was in it.",
            "Please freeze my card, I can't find it anywhere.",
            "lost my card, need a replacement",
            "Someone stole my bag {when} with my {card} inside. What do I do now?",
            "How do I report a lost card in {app}? I can't see the option.",
            "I left my card in a cash machine in {city} and when I went back it was gone. "
            "Please cancel it.",
            "My card was pickpocketed while I was travelling in {country}. "
            "I need it blocked immediately.",
            "Can you send me a new card? The old one went missing {when}.",
            "I dropped my {card} {place_lost} and by the time I noticed it wasn't there anymore.",
            "Is it possible to get an emergency replacement card? Mine was stolen and I'm "
            "abroad in {country}.",
            "My card has disappeared. I've frozen it in {app} but I want to order a new one.",
            "Card stolen. Block it now please.",
            "I can't remember where I put my card, I last used it at {merchant} {when}. "
            "Should I cancel it or wait a bit?",
            "Our flat was broken into {when} and my cards were taken along with my laptop.",
            "My {card} was in my jacket which I left {place_lost}. How quickly can I get a "
            "replacement?",
            "Where is the button to report my card as stolen?",
            "My son borrowed my {card} and now he's lost it. Can you cancel it and send a new one?",
            "I need to cancel my card ending {last4}, it fell out of my pocket {place_lost}.",
            "My card is missing and I want it blocked before anyone uses it.",
            "I had my phone case with my card in it stolen {place_lost} in {city}. "
            "Please stop the card.",
            "can u block my card, think someone took it from my bag",
            "What happens to my pending payments if I report my card as lost?",
            "The cash machine kept my card and never gave it back. Do I need a new one?",
        ),
        "context": (
            "I've already checked my car and all my coat pockets.",
            "I'm travelling in {country} at the moment and have no other card with me.",
            "The last time I used it was at {merchant} {when}.",
            "I've frozen it temporarily in {app} just in case.",
            "I've already reported it to the police.",
            "I only noticed when I went to pay for lunch.",
        ),
        "followups": (
            "I haven't noticed any strange payments yet.",
            "Can the new card be sent to a different address?",
            "How long will the replacement take to arrive?",
            "Will my direct debits still work with the new card?",
        ),
    },
    "card_declined": {
        "templates": (
            "My card was declined at {merchant} {when} even though I have money in my account.",
            "Why does my card keep getting declined online?",
            "card declined at the supermarket again, what is going on",
            "I tried to pay {amount} at {merchant} and the payment was refused.",
            "My {card} isn't working in {country}. Every payment gets rejected.",
            "The terminal says declined every time I tap my card.",
            "I was so embarrassed at the checkout, my card was declined twice. "
            "There's plenty of balance. Please explain.",
            "Contactless isn't working on my card but chip and PIN does. Why is that?",
            "My card gets declined when I try to add it to {wallet}.",
            "Tried to book a flight with {airline} for {amount} and it failed with card declined.",
            "Can you check why my card was declined at {merchant}? It worked fine last week.",
            "Payment rejected at the petrol station. Is my card blocked?",
            "My card doesn't work at cash machines in {country}, it says transaction not allowed.",
            "Why was my card payment of {amount} refused? I'm not over any limit as far as I know.",
            "My {subscription} subscription failed because the card was declined.",
            "The new card you sent me gets declined everywhere. Did I need to activate it?",
            "The hotel in {city} couldn't take a deposit on my {card}, it was declined.",
            "Card not working. Declined in three shops today.",
            "Is there a daily spending limit? My card got declined after I spent {amount}.",
            "I keep getting do not honour errors when paying online with my card.",
            "My card got declined for {amount} at {merchant} but I can see the amount as "
            "pending in {app}. Was I charged or not?",
            "Online payments with my {card} fail at the 3D Secure step every single time.",
            "why is my card getting rejected?? I have over {amount} in there",
            "I got a text saying a payment at {merchant} was declined for security reasons. "
            "It was me, can you let it through?",
            "My card ending {last4} was declined at {merchant}, "
            "is there a problem with my account?",
        ),
        "context": (
            "I'm currently in {country} for work.",
            "The card is definitely not expired.",
            "I checked {app} and the card isn't frozen.",
            "I got paid {when} so there's definitely money in the account.",
        ),
        "followups": (
            "I had to pay with cash in the end.",
            "My partner's card from the same bank worked fine at the same place.",
            "The shop assistant said it wasn't a problem with their machine.",
            "It was the same when I tried {wallet}.",
            "There's no notification in the app explaining why.",
        ),
    },
    "transfer_pending": {
        "templates": (
            "I sent {amount} to {recipient} {when} and it still says pending.",
            "How long does a bank transfer usually take? Mine has been pending for {duration}.",
            "My transfer to {country} hasn't arrived yet.",
            "The money I sent to {recipient} {when} still hasn't arrived.",
            "transfer stuck on pending since {day}",
            "Why is my international transfer taking so long? It's been {duration}.",
            "I made a payment of {amount} to {recipient} but they say it hasn't reached them. "
            "The app shows it as processing.",
            "Can you check the status of my transfer? It was supposed to arrive {when}.",
            "I moved {amount} from my savings into my current account and it's still not there.",
            "I need that transfer to go through today, my rent is due. "
            "It's been pending for {duration}.",
            "Transfer to {recipient} has said in progress for {duration}. Is something wrong?",
            "Is there a reason my SEPA transfer is delayed?",
            "I topped up my account by bank transfer {when} and the money hasn't shown up.",
            "The recipient's bank says nothing has come in, but {amount} has already left my "
            "balance.",
            "Can I cancel a transfer that's pending? It's been stuck for {duration}.",
            "Why does my transfer to {country} need extra checks? It's still on hold.",
            "When will my pending transfer actually be completed?",
            "I sent money to family in {country} on {day} and they still haven't got it.",
            "Transfer not received by {recipient}. Sent {amount} {when}.",
            "Is there a delay with transfers today? Mine hasn't cleared.",
            "i paid {recipient} {amount} {when} and its still not gone through, why",
            "My salary was sent by my employer on {day} and it's not in my account yet.",
            "The transfer shows completed on my side but {recipient} hasn't received {amount}.",
        ),
        "context": (
            "I've sent money to them before without any issue.",
            "Normally transfers to them arrive within minutes.",
            "The details I entered were definitely correct.",
            "It's the deposit for a flat, so it's quite time sensitive.",
        ),
        "followups": (
            "It's quite urgent as I have bills to pay.",
            "The app doesn't give any reason for the delay.",
            "Can you give me a reference I can pass on to them?",
            "Do I need to do anything on my side?",
        ),
    },
    "refund_request": {
        "templates": (
            "I returned an item to {shop} {when} but haven't got my refund yet.",
            "How do I request a refund for a payment I made by mistake?",
            "I was charged twice for the same order at {merchant}. Can one of them be refunded?",
            "{merchant} says they refunded {amount} {duration} ago but it's not in my account.",
            "I cancelled my order and the shop promised a refund. When will I see it?",
            "Can you help me get my money back from {shop}? They never delivered my order.",
            "I'd like to raise a chargeback for {amount}, the seller isn't responding.",
            "My flight with {airline} was cancelled and I want a refund of {amount}.",
            "where is my refund from {merchant}",
            "The refund from {merchant} shows as pending, how long until it lands?",
            "I paid {amount} for a service that was never provided. How do I get refunded?",
            "Please refund the {amount} fee you charged me for {fee_reason}, "
            "I was told it would be free.",
            "I was overcharged at {merchant}, they took {amount} instead of {amount}. "
            "I need the difference back.",
            "The item was faulty so I sent it back to {shop} and they confirmed a refund. "
            "Still nothing.",
            "Can a refund still go to my card if the card has been replaced since?",
            "I want my money back for the hotel booking in {city}, they cancelled on me.",
            "Refund still not received. It's been {duration}.",
            "How long do refunds normally take to show up on my card?",
            "I accidentally paid the same invoice twice. Can you reverse one of the payments?",
            "The concert I paid {amount} for was cancelled, how do I claim the money back?",
            "i need a refund for {amount}, {shop} charged me for something i sent back",
            "The merchant gave me a refund receipt for {amount} {when} "
            "but I don't see it anywhere.",
            "Your bank charged me a fee for {fee_reason} by mistake, can I have it back?",
        ),
        "context": (
            "I paid with my {card}.",
            "The original payment was on {day}.",
            "It was a one-off purchase, not a subscription.",
            "I've emailed them three times with no answer.",
        ),
        "followups": (
            "I have the return receipt and tracking details if you need them.",
            "The merchant told me to contact my bank.",
            "Can you open a dispute for me?",
            "I'd like the money back on the same card.",
        ),
    },
    "login_problem": {
        "templates": (
            "I can't log into the app after updating my phone.",
            "The app keeps saying my password is wrong but I'm sure it's right.",
            "I'm not getting the verification code by SMS so I can't sign in.",
            "My account is locked after too many login attempts. How do I unlock it?",
            "Face ID stopped working for {app}.",
            "I got a new phone and now I can't access my account.",
            "can't log in to my account, keeps failing",
            "Forgot my passcode and the reset link never arrives.",
            "The app crashes every time I try to log in on my {phone}.",
            "I've been locked out of online banking for {duration}, it's really frustrating.",
            "It says session expired immediately after I log in.",
            "How do I reset my passcode for the app? I keep getting it wrong.",
            "The selfie verification keeps failing so I can't get into my account.",
            "My email address changed and now the login code goes to the old one.",
            "Web banking just shows a blank page after I enter my details.",
            "I'm abroad in {country} and the login code isn't arriving on my phone.",
            "I get an error saying something went wrong when signing in. "
            "Tried reinstalling, no luck.",
            "Why do I have to verify my identity every single time I open the app?",
            "Can't get into my account to check my balance, the app won't let me in.",
            "I need to pay something urgently but I can't log in!!",
            "Fingerprint login isn't working anymore on my {phone}.",
            "I changed my phone number and now I'm stuck on the security check at login.",
            "The website says my username doesn't exist, but I've banked with you for years.",
        ),
        "context": (
            "I've already restarted my phone twice.",
            "My phone is fully updated.",
            "I haven't changed anything on my account recently.",
            "It was working fine {when}.",
        ),
        "followups": (
            "I've tried on {device} as well with the same result.",
            "I can see my card still works, it's just the app.",
            "The help article didn't cover this error.",
            "I need to check my balance before paying rent.",
        ),
    },
    "exchange_rate": {
        "templates": (
            "What exchange rate do you use when I pay in {currency}?",
            "I was charged more than I expected for a purchase in {country}. "
            "Was the exchange rate wrong?",
            "Why is your rate for {currency} different from the one I see on Google?",
            "Is there a fee for converting {cur_code} to {cur_code}?",
            "The rate changed between when I paid and when the payment settled. Which one applies?",
            "How much will I get if I exchange {amount} into {currency}?",
            "Do you charge extra for currency exchange at weekends?",
            "I'm going to {country} next month, what's the best way to get a good rate?",
            "exchange rate seems really bad today",
            "Should I pay in local currency or in my home currency when the card machine asks?",
            "The rate I got for {currency} was terrible compared to what the app showed.",
            "Can I lock in an exchange rate before I travel to {country}?",
            "Why did a {amount} purchase in {country} cost me so much more than expected?",
            "What's the markup on your exchange rate?",
            "I withdrew cash in {city} and the conversion looks off.",
            "Is the exchange rate shown in {app} live or delayed?",
            "How often do you update your exchange rates?",
            "I got a refund in {currency} but it was converted at a different rate, "
            "so I lost money on it.",
            "Which exchange rate applies when I send money to {country}?",
            "Is there a limit on how much I can exchange at the interbank rate each month?",
            "what rate would i get for {cur_code} right now",
            "I paid {amount} in {city} and the amount in {cur_code} on my statement doesn't "
            "match any rate I can find.",
        ),
        "context": (
            "I use my {card} a lot when travelling.",
            "I'm planning a trip to {country} soon.",
            "I compared it with a currency converter website.",
        ),
        "followups": (
            "The difference is small but it adds up.",
            "I'd just like to understand how the conversion works.",
            "Is this explained anywhere in the app?",
        ),
    },
    "cancel_direct_debit": {
        "templates": (
            "How do I cancel a direct debit to {biller}?",
            "Please stop the direct debit for {biller}, I've ended the contract.",
            "I want to cancel my standing order to {recipient}.",
            "{biller} is still taking money by direct debit even though I left them.",
            "cancel direct debit for {biller} please",
            "Can I cancel a direct debit in {app} or do I need to call you?",
            "I want to stop {biller} from collecting payments from my account.",
            "There's a direct debit set up that I no longer need. How do I remove it?",
            "Please cancel all the recurring payments to {biller}.",
            "I cancelled my membership with {biller} but they're still set to take {amount} "
            "next month. Can you stop the mandate?",
            "How do I block future payments to {subscription}? I've already unsubscribed.",
            "I need to cancel a direct debit before it comes out on {day}.",
            "Can you remove the direct debit mandate for {biller}? I've switched providers.",
            "Where can I see all my direct debits so I can cancel a few?",
            "Stop the monthly payment to {biller} please.",
            "If I cancel a direct debit, will the company be told?",
            "I set up a direct debit with the wrong amount by mistake. Can I cancel it and start "
            "again?",
            "The gym won't let me cancel so I'd like you to stop the direct debit on your side.",
            "My direct debit to {biller} went up to {amount}, I want to cancel it and pay "
            "manually instead.",
            "want to get rid of the direct debit to {biller}, how",
            "I closed my account with {biller}, please make sure no more direct debits go out.",
            "Is it possible to cancel a direct debit that is due tomorrow?",
        ),
        "context": (
            "I've already told them I'm leaving.",
            "The last payment went out on {day}.",
            "They keep ignoring my emails.",
        ),
        "followups": (
            "I don't want to end up paying for another month.",
            "I can't find the option in {app}.",
            "Can you confirm once it's cancelled?",
        ),
    },
    "unrecognised_charge": {
        "templates": (
            "There's a payment to {merchant} for {amount} that I don't recognise.",
            "I didn't make this transaction: {amount} at {merchant} {when}.",
            "Who is {cryptic}? There's a charge from them on my statement.",
            "Someone has used my card without my permission. There are charges from {country}.",
            "I've never shopped at {merchant}, so why is there a payment to them?",
            "What is this charge for {amount}? I have no idea what it is.",
            "unknown transaction on my account please check",
            "There are several small payments I didn't authorise, all around {amount}.",
            "I think my card details were compromised, there's a charge at {merchant} I didn't "
            "make. I still have the card with me.",
            "A subscription I never signed up for is charging me {amount} every month.",
            "There's a card payment in {currency} but I haven't been abroad.",
            "Can you tell me more about a {amount} transaction from {when}? "
            "The merchant name just says {cryptic}.",
            "My statement shows a purchase I have no memory of making.",
            "I can see a pending payment of {amount} that isn't mine. Can you stop it?",
            "Fraudulent charges on my account! I need this sorted now.",
            "Is the charge from {cryptic} legit? Never heard of it.",
            "My partner and I both checked and neither of us made this {amount} payment at "
            "{merchant}.",
            "There's a charge from {merchant} in {country}, I've never even been there.",
            "Strange transaction on my {card}, {amount} to a company I've never heard of.",
            "I want to dispute a card payment I didn't make.",
            "what is {cryptic} and why did they take {amount} from me",
            "Two payments to {merchant} appeared overnight while I was asleep. Not me.",
        ),
        "context": (
            "My card has been in my wallet the whole time.",
            "Nobody else has access to my account.",
            "I haven't shared my card details with anyone.",
            "I've frozen the card in {app} for now.",
        ),
        "followups": (
            "It appeared {when}.",
            "Please send me a new card if needed.",
            "Can you stop any more payments to them?",
            "I'd like the money back.",
        ),
    },
}

FIN_SIZES = {
    "card_lost_or_stolen": 124,
    "card_declined": 118,
    "transfer_pending": 121,
    "refund_request": 116,
    "login_problem": 120,
    "exchange_rate": 115,
    "cancel_direct_debit": 117,
    "unrecognised_charge": 119,
}

# --------------------------------------------------------------------------------------------
# Healthcare: patient-portal messages to a clinic (no names, contacts, ids or dates)
# --------------------------------------------------------------------------------------------

HC_OPENERS = (
    "Hi!", "Hello.", "Good morning!",
    "Hi,", "Hello,", "Good morning,", "Good afternoon,", "Hello doctor,", "Hi nurse,",
    "Hello clinic team,", "Dear care team,", "To whom it may concern,", "Hi there,",
    "Hello again,",
)
HC_CLOSERS = (
    "Thank you.", "Thanks!", "Thanks so much.", "Please let me know.", "Please advise.",
    "Appreciate your help.", "Thanks in advance.", "Please help asap.",
    "Please get back to me soon.", "Thank you for your time.", "Kind regards.",
    "Any advice is welcome.",
)
HC_GENERIC_CONTEXT = (
    "Sorry if this is the wrong place to ask.", "I'm not sure who else to ask.",
    "I tried calling but the line was busy.",
)
HC_GENERIC_FOLLOWUPS = (
    "Thank you for your patience with me.", "I can check the portal any time today.",
    "A message through the portal is easiest for me.",
)

HC_SLOTS: dict[str, tuple[str, ...]] = {
    "relative": (
        "my son", "my daughter", "my mother", "my father", "my husband", "my wife", "my partner",
        "my toddler", "my elderly mother", "my teenage son", "my grandmother", "my baby", "my dad",
        "my mum",
    ),
    "doctor": (
        "my doctor", "my GP", "the nurse practitioner", "my cardiologist", "the dermatologist",
        "my primary care doctor", "the physician assistant", "my usual doctor",
    ),
    "specialist": (
        "a cardiologist", "a dermatologist", "an orthopaedic specialist", "a physiotherapist",
        "an allergist", "a gastroenterologist", "an ENT specialist",
    ),
    "medication": (
        "lisinopril", "metformin", "atorvastatin", "levothyroxine", "sertraline", "amlodipine",
        "omeprazole", "losartan", "gabapentin", "montelukast", "simvastatin", "escitalopram",
        "pantoprazole", "hydrochlorothiazide",
    ),
    "med_any": (
        "lisinopril", "metformin", "atorvastatin", "sertraline", "omeprazole", "inhaler",
        "albuterol inhaler", "blood pressure pills", "birth control pills", "insulin",
        "thyroid medication", "allergy tablets", "cholesterol medication", "eye drops",
        "steroid cream",
    ),
    "dose": ("10 mg", "20 mg", "25 mg", "50 mg", "100 mg", "500 mg", "40 mg", "5 mg"),
    "n_days": ("2 days", "3 days", "a few days", "one week", "4 pills", "a couple of days"),
    "pharmacy": (
        "my usual pharmacy", "the pharmacy near my house", "the mail-order pharmacy",
        "the pharmacy inside the supermarket", "the pharmacy by my work", "the 24-hour pharmacy",
    ),
    "test": (
        "blood work", "cholesterol test", "MRI", "x-ray", "ultrasound", "A1C test", "thyroid test",
        "urine test", "biopsy", "CT scan", "ECG", "allergy test", "mammogram", "sleep study",
        "stool test", "bone density scan",
    ),
    "marker": (
        "cholesterol", "potassium", "vitamin D", "TSH", "white blood cell", "iron", "liver enzyme",
        "creatinine", "glucose",
    ),
    "routine": (
        "a mild cough", "a runny nose", "a sore throat", "a rash on my arm", "mild back pain",
        "heartburn", "itchy eyes", "a stuffy nose", "trouble sleeping", "a mild earache",
        "a small cut that is healing slowly", "seasonal allergies", "a wart on my finger",
        "very dry skin", "mild headaches", "a stiff neck", "mild knee pain", "dandruff",
    ),
    "urgent": (
        "chest pain", "severe shortness of breath", "a sudden severe headache", "slurred speech",
        "severe abdominal pain", "swelling in my throat", "sudden vision loss",
        "numbness on one side of my body", "heavy bleeding that won't stop",
        "a racing heartbeat and fainting", "blood in my vomit",
    ),
    "body_part": (
        "knee", "lower back", "shoulder", "ankle", "wrist", "neck", "hip", "elbow", "foot", "hand",
        "leg",
    ),
    "duration": (
        "2 days", "3 days", "a week", "about 10 days", "two weeks", "a month", "4 days",
        "a few weeks", "several days",
    ),
    "onset": (
        "about an hour ago", "this morning", "a few minutes ago", "suddenly tonight",
        "in the last hour", "after lunch", "half an hour ago",
    ),
    "when_past": (
        "last week", "on Monday", "two weeks ago", "a few days ago", "last month", "on Friday",
        "yesterday",
    ),
    "when_future": (
        "next week", "this Friday", "tomorrow morning", "sometime this week", "early next month",
        "on Thursday afternoon", "as soon as possible",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "duration_future": ("two weeks", "a month", "six weeks", "three months"),
    "insurer": (
        "my insurance", "Medicare", "Medicaid", "my new insurance plan", "my employer plan",
        "Blue Cross", "Aetna", "Cigna", "my secondary insurance",
    ),
    "low_temp": ("99.5 F", "100 F", "100.2 F", "37.8 C", "38 C", "99.8 F"),
    "high_temp": ("104 F", "104.5 F", "105 F", "40.5 C", "103.8 F"),
    "infant_age": ("6 weeks", "2 months", "5 weeks", "10 weeks"),
    "purpose": (
        "school", "a new job", "travel", "summer camp", "college", "immigration paperwork",
        "a sports physical", "my new employer", "daycare",
    ),
    "destination": (
        "my new clinic", "the orthopaedic surgeon", "my new primary care office",
        "the specialist I was referred to", "the hospital where I'm having surgery",
        "my physiotherapist", "my new doctor in another state",
    ),
    "allergy": ("penicillin", "latex", "sulfa drugs", "shellfish", "aspirin", "peanuts"),
}


def _hc_amount(rng: random.Random) -> str:
    """A small billing amount such as '$45' or '$320.50' (no long digit runs)."""
    value = rng.choice((rng.randint(15, 99), rng.randint(100, 950)))
    if rng.random() < 0.3:
        return f"${value}.{rng.choice((0, 25, 50, 75)):02d}"
    return f"${value}"


HC_SLOT_FUNCS: dict[str, Callable[[random.Random], str]] = {"amount": _hc_amount}

HEALTHCARE: dict[str, dict[str, tuple[str, ...]]] = {
    "appointment_request": {
        "templates": (
            "I'd like to book an appointment with {doctor} {when_future}.",
            "Can I schedule a check-up for {relative}?",
            "Do you have any openings {when_future}? I'd like to come in about {routine}.",
            "I need to reschedule my appointment on {day}.",
            "Please cancel my appointment for {day}, something came up at work.",
            "Is it possible to do a telehealth visit instead of coming in?",
            "I need a follow-up appointment after my {test}.",
            "Can I book my annual physical?",
            "need an appt asap, any time works for me",
            "Could you fit me in with {doctor} before the end of the week?",
            "I'm a new patient and would like to set up my first visit.",
            "{relative} needs a vaccination appointment. What days do you have?",
            "I missed my appointment {when_past}, can I rebook?",
            "Are there any evening or weekend slots available?",
            "I'd like to switch to a different doctor at the clinic. How do I book with them?",
            "Can I move my {day} visit to the afternoon?",
            "I was told to come back in {duration_future} for a recheck. Please book me in.",
            "How far out are you booking physicals right now?",
            "Can I get a referral appointment with {specialist}?",
            "I'd like a flu shot appointment for me and {relative}.",
            "is there anything open on {day} morning for {relative}",
            "I'm running late for my appointment today, will I still be seen or should I "
            "reschedule?",
        ),
        "context": (
            "It's not urgent.",
            "I work shifts so my availability changes every week.",
        ),
        "followups": (
            "Mornings work best for me.",
            "I can only come after work.",
            "Any day except {day} is fine.",
            "I'd prefer to see {doctor} if possible.",
            "I'm happy to be put on the cancellation list.",
        ),
    },
    "prescription_refill": {
        "templates": (
            "I need a refill of my {med_any}.",
            "Can you send a new prescription for {medication} {dose} to {pharmacy}?",
            "I'm almost out of my {med_any}, only {n_days} left.",
            "The pharmacy says my prescription has no refills left. Can {doctor} authorise more?",
            "refill {med_any} please",
            "Could my {med_any} be changed to a 90-day supply?",
            "I'm travelling next month and need an early refill of my {med_any}.",
            "My prescription for {med_any} expired, can it be renewed without a visit?",
            "Please send my refill to a different pharmacy this time, {pharmacy}.",
            "The pharmacy hasn't received the refill request from you yet. It's been {duration}.",
            "I lost my {med_any}, can I get a replacement prescription?",
            "{relative} needs a refill of their {med_any}.",
            "Can I get my {medication} refilled at the same dose, {dose}?",
            "Is there a generic version of my {med_any}? If so please send that instead.",
            "I ran out of my {med_any} {when_past}. Please refill as soon as you can.",
            "Requesting a renewal of my {med_any} prescription.",
            "My insurance only covers a 30-day supply, can you send the refill for 30 days?",
            "I ran out of my {med_any} while on holiday, can you send it to a pharmacy here?",
            "The pharmacy says they need a new script from {doctor} for my {medication}.",
            "Need my {med_any} refilled before the weekend.",
            "can u renew my {medication} {dose}, pharmacy said to contact you",
            "I'm down to my last few doses of {medication} and the portal won't let me "
            "request a refill.",
        ),
        "context": (
            "I take it once a day.",
            "Nothing has changed with my health since my last visit.",
            "I've been on it for years.",
            "The dose is working well for me.",
        ),
        "followups": (
            "I don't want to miss any doses.",
            "I can pick it up any time this week.",
            "Please let me know if I need to come in first.",
        ),
    },
    "test_results": {
        "templates": (
            "Are my {test} results back yet?",
            "I had my {test} {when_past}. When will I hear about the results?",
            "Can someone explain my {test} results? I don't understand what borderline means.",
            "I saw my {test} results in the portal but there's no note from {doctor}.",
            "My {test} came back flagged high. Should I be worried?",
            "any news on my results?",
            "It's been {duration} since my {test} and nobody has called me.",
            "Could {doctor} review my {test} results and let me know the next steps?",
            "The lab said my results were sent to you {when_past}. Can you share them?",
            "Do I need to come in to go over my {test} results or can it be done by message?",
            "{relative} had a {test} {when_past}, are the results in?",
            "What does a high {marker} level mean on my blood test?",
            "I'm anxious waiting for my {test} results, please tell me as soon as they're ready.",
            "I got a notification that new results are available but I can't open them.",
            "Were my {test} results normal?",
            "Should I repeat the {test} since the last one was inconclusive?",
            "My latest results show something about my {marker}, can you explain?",
            "Has my biopsy come back yet? It's been {duration}.",
            "Can you compare my latest {test} with the one from last year?",
            "Still waiting on my {test} results from {when_past}.",
            "my {marker} was low on the last test, is that something to treat",
            "The report for my {test} uses a lot of terms I don't know. What does it mean overall?",
        ),
        "context": (
            "I've been a bit nervous about it.",
            "I fasted before the test as instructed.",
            "{doctor} ordered it at my last visit.",
            "The lab told me it would take a few days.",
        ),
        "followups": (
            "I'd prefer a message rather than a call.",
            "Do I need to do anything before my next visit?",
        ),
    },
    "billing_insurance": {
        "templates": (
            "I received a bill for {amount} but I thought my visit was covered by {insurer}.",
            "Can you resubmit my claim to {insurer}? It was denied.",
            "Do you accept {insurer}?",
            "I was charged twice for my visit {when_past}.",
            "My insurance changed this year, how do I update it on file?",
            "Why was I billed {amount} for a telehealth visit?",
            "Can I set up a payment plan for my bill?",
            "I need an itemised receipt for my {test} for my insurance.",
            "The copay I was charged is different from what my plan says.",
            "bill is wrong, can someone look at it",
            "Is prior authorisation needed for my {test}? I don't want a surprise bill.",
            "I got an explanation of benefits from {insurer} that doesn't match your bill.",
            "How much does a {test} cost without insurance?",
            "I already paid {amount} at the front desk but the bill still shows it as owed.",
            "Why is my {med_any} no longer covered by {insurer}?",
            "My bill went to collections even though I was told insurance would pay. "
            "I'm very upset.",
            "Can you send me a statement of what I've paid this year for my taxes?",
            "I have a new secondary insurance. Can you bill them for the remaining balance?",
            "What is this {amount} charge labelled facility fee?",
            "Do you offer financial assistance or discounts for self-pay patients?",
            "why do i owe {amount} when {insurer} said it was fully covered",
            "The online payment page won't accept my card when I try to pay my {amount} balance.",
        ),
        "context": (
            "I've been paying the same copay for years.",
            "Money is tight right now.",
            "Nobody explained the cost at check-in.",
        ),
        "followups": (
            "I have the letter from {insurer} if you need it.",
            "I'd like to sort this out before the due date.",
            "Please don't send it to collections while this is being checked.",
        ),
    },
    "urgent_symptoms": {
        "templates": (
            "I'm having {urgent} right now, what should I do?",
            "{relative} has {urgent} and it started {onset}.",
            "Sudden chest pain spreading to my left arm, and I'm sweating a lot.",
            "{relative} has a fever of {high_temp} and is very drowsy, hard to wake up.",
            "I can't catch my breath even sitting still. It's getting worse.",
            "I think I'm having an allergic reaction to {medication}, "
            "my lips and tongue are swelling.",
            "{relative}'s face looks droopy on one side and their speech is slurred.",
            "I fell and hit my head, now I'm confused and throwing up.",
            "severe pain in my lower right belly, can't stand up straight",
            "I'm pregnant and bleeding heavily with bad cramping.",
            "{relative} swallowed some of my pills by accident, not sure how many.",
            "I've been vomiting blood since {onset}.",
            "Worst headache of my life came on suddenly, and my neck is stiff.",
            "My {body_part} is badly swollen and bent at a strange angle after a fall, "
            "I can't move it.",
            "My blood sugar reading is very high and I feel faint and confused.",
            "My baby is {infant_age} old with a fever of {low_temp} and won't feed.",
            "I'm having thoughts of hurting myself and I don't feel safe right now.",
            "Chest feels tight and my heart is racing, I nearly passed out {onset}.",
            "{relative} has a rash that doesn't fade when pressed and a high fever.",
            "I suddenly lost vision in one eye {onset}.",
            "I can't feel my left arm and my face feels numb. Is this serious?",
            "help, {relative} is wheezing badly and the inhaler isn't helping at all",
            "My lips are turning blue and I can barely speak in full sentences.",
            "{relative} has a fever of {high_temp} that won't come down with medicine and is "
            "breathing very fast.",
            "My headache came on suddenly {onset} and now I'm seeing double and can't walk "
            "straight.",
        ),
        "context": (
            "I'm home alone right now.",
            "I've never seen anything like this before.",
            "I'm really scared.",
        ),
        "followups": (
            "It's getting worse by the minute.",
            "Should I go straight to the emergency room?",
            "Should I call an ambulance?",
        ),
    },
    "routine_symptoms": {
        "templates": (
            "I've had {routine} for {duration}. Should I be seen or just wait it out?",
            "{relative} has had {routine} for {duration}. Any advice?",
            "Mild {body_part} pain after exercising, it comes and goes. "
            "Is there anything I can do at home?",
            "I have a low-grade fever of {low_temp} and a sore throat, otherwise feeling ok.",
            "sneezing a lot and itchy eyes, probably allergies?",
            "Is it normal to still have a cough {duration} after a cold?",
            "{relative} has a small rash on their {body_part}, it's not spreading and doesn't "
            "seem to bother them.",
            "I've been getting heartburn after meals, what can I take for it?",
            "Can I take ibuprofen for my {body_part} pain along with my {medication}?",
            "I've been more tired than usual for {duration}. Nothing severe, "
            "just wondering if I should get checked.",
            "Mild headache most afternoons, I think it's screen time. Thoughts?",
            "My {body_part} has been sore since {when_past}, no swelling, just stiff.",
            "My ears feel blocked after a cold. Should I worry?",
            "Got a mosquito bite that's itchy and a bit red, no fever.",
            "I've had trouble sleeping for {duration}, any tips?",
            "Slight dizziness when I stand up too fast. It passes quickly.",
            "I keep getting cold sores, is there something I can use?",
            "Stuffy nose and a mild cough for {duration}, no fever. Do I need antibiotics?",
            "I think {relative} has pink eye, slightly crusty in the morning but otherwise fine.",
            "I've had some mild constipation for {duration}, what do you recommend?",
            "twisted my {body_part} a bit, can walk fine but it aches. ice or heat?",
            "My chest feels a little congested from a cold but breathing is fine. "
            "Anything over the counter?",
            "{relative} has a fever of {low_temp} but is eating, drinking and playing normally.",
            "Occasional mild headache behind my eyes for {duration}, it goes away with "
            "paracetamol.",
        ),
        "context": (
            "I had something similar last year.",
            "Otherwise I feel fine.",
            "I don't want to waste an appointment if it's nothing.",
        ),
        "followups": (
            "It's not getting worse, just not going away.",
            "I've been taking paracetamol which helps a bit.",
            "Eating and drinking normally.",
            "Is it worth booking a visit or can I manage at home?",
        ),
    },
    "medical_records": {
        "templates": (
            "How can I get a copy of my medical records?",
            "Please send my records to my new doctor's office.",
            "I need my vaccination history for {purpose}.",
            "Can you transfer my files to {destination}?",
            "I'm moving to another state and need all my records sent over.",
            "Can I download my visit notes from the portal?",
            "There's a mistake in my chart, it lists an allergy to {allergy} that I don't have.",
            "I'd like a copy of {relative}'s immunisation record for {purpose}.",
            "Please update my chart, I no longer use {med_any}.",
            "How long does it take to process a records request?",
            "I need the images from my {test} on a disc for another hospital.",
            "Who do I send the records release form to?",
            "Can {relative} get proxy access to my portal so they can see my records?",
            "I need a printed copy of my {test} report for {purpose}.",
            "Is there a fee for getting copies of my chart?",
            "My visit summary from {when_past} is missing from the portal.",
            "Please add my updated family history to my file.",
            "I need a letter summarising my medical history for {purpose}.",
            "How far back do your records go? I need notes from years ago.",
            "the allergy list in my chart is out of date, {allergy} should be added",
            "My old clinic closed, can you request my records from them?",
            "Can you fax or upload my records to {destination} before my appointment there?",
        ),
        "context": (
            "This is for {purpose}.",
            "I've already signed the release form.",
        ),
        "followups": (
            "They need it by the end of the month.",
            "An electronic copy is fine.",
            "I'd prefer a paper copy if possible.",
        ),
    },
}

HC_SIZES = {
    "appointment_request": 125,
    "prescription_refill": 122,
    "test_results": 118,
    "billing_insurance": 120,
    "urgent_symptoms": 116,
    "routine_symptoms": 123,
    "medical_records": 126,
}

# fmt: on

# --------------------------------------------------------------------------------------------
# Safety checks (also run by the generator before writing anything)
# --------------------------------------------------------------------------------------------

PHI_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"[\w.+-]+@[\w-]+\.[\w.]+",  # email
        r"\d{3}[-. ]\d{3,4}[-. ]\d{4}",  # phone number
        r"\(\d{3}\)\s*\d{3}",  # phone number with area code
        r"\d{7,}",  # long digit runs
        r"\d{3}-\d{2}-\d{4}",  # SSN
        r"\bMRN\b",
        r"record (?:number|no\.?|#)\s*:?\s*\d",
        r"#\s*\d{5,}",
        r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}",  # dates
        r"\b(?:19|20)\d{2}\b",  # years
        r"date of birth|\bDOB\b|\bborn on\b",
        r"\bDr\.?\s+[A-Z][a-z]+",  # named doctor
    )
)
FINANCE_PATTERNS = (re.compile(r"\d{8,}"), re.compile(r"\d{4}[ -]\d{4}[ -]\d{4}"))

SLOT_RE = re.compile(r"\{(\w+)\}")
FIRST_PERSON_I = re.compile(r"^I\b")


def normalise(text: str) -> str:
    """Key used for de-duplication: lowercase, alphanumerics only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9£$€]+", " ", text.lower()).split())


def violations(text: str, domain: str) -> list[str]:
    """Return the list of constraint violations for one text (empty if it is fine)."""
    problems = []
    if text != text.strip() or "\n" in text or "\r" in text:
        problems.append("whitespace/newline")
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        problems.append(f"length {len(text)}")
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        problems.append(f"words {len(text.split())}")
    if "{" in text or "}" in text:
        problems.append("unfilled slot")
    patterns = PHI_PATTERNS if domain == "healthcare" else FINANCE_PATTERNS
    problems += [f"pattern {p.pattern}" for p in patterns if p.search(text)]
    return problems


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

DOMAINS = {
    "finance": {
        "classes": FINANCE,
        "sizes": FIN_SIZES,
        "slots": FIN_SLOTS,
        "slot_funcs": FIN_SLOT_FUNCS,
        "openers": FIN_OPENERS,
        "closers": FIN_CLOSERS,
        "generic_context": FIN_GENERIC_CONTEXT,
        "generic_followups": FIN_GENERIC_FOLLOWUPS,
        "description": "customer messages to an online bank's support team",
    },
    "healthcare": {
        "classes": HEALTHCARE,
        "sizes": HC_SIZES,
        "slots": HC_SLOTS,
        "slot_funcs": HC_SLOT_FUNCS,
        "openers": HC_OPENERS,
        "closers": HC_CLOSERS,
        "generic_context": HC_GENERIC_CONTEXT,
        "generic_followups": HC_GENERIC_FOLLOWUPS,
        "description": "patient-portal messages to a clinic, labelled for triage",
    },
}


def fill(template: str, rng: random.Random, spec: dict) -> str:
    """Replace every ``{slot}`` with an independent random fill."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in spec["slot_funcs"]:
            return spec["slot_funcs"][name](rng)
        return rng.choice(spec["slots"][name])

    return SLOT_RE.sub(one, template)


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def make_sentence(template: str, rng: random.Random, spec: dict) -> tuple[str, bool]:
    """Fill a template; also say whether it may start lowercase after an opener like 'Hi,'."""
    text = fill(template, rng, spec)
    first = text.split()[0]
    lowerable = (
        not template.startswith("{")  # slot fills may be names (Tesco, Medicare)
        and not FIRST_PERSON_I.match(text)
        and first[1:] == first[1:].lower()  # keep acronyms such as MRI
    )
    return text, lowerable


def n_extras(rng: random.Random) -> int:
    r = rng.random()
    for count, p_cumulative in EXTRA_COUNTS:
        if r < p_cumulative:
            return count
    return 0


def compose(label: str, rng: random.Random, spec: dict) -> str:
    """Build one message: [opener] [context] core [context] [follow-up] [closer] + tweaks."""
    cls = spec["classes"][label]
    core, core_lowerable = make_sentence(rng.choice(cls["templates"]), rng, spec)
    terse = core[:1].islower()  # lowercase templates are the terse/casual register

    before: list[tuple[str, bool]] = []
    after: list[str] = []
    followups: list[str] = []
    pool = [(t, True) for t in cls["context"] + spec["generic_context"]]
    pool += [(t, False) for t in cls["followups"] + spec["generic_followups"]]
    for template, is_context in rng.sample(pool, n_extras(rng)):
        text, lowerable = make_sentence(template, rng, spec)
        text = capitalise(text)
        if is_context and rng.random() < P_CONTEXT_FIRST:
            before.append((text, lowerable))
        elif is_context:
            after.append(text)
        else:
            followups.append(text)

    body = [*before, (core if terse else capitalise(core), core_lowerable)]
    tail = [*after, *followups]
    if rng.random() < P_CLOSER:
        tail.append(rng.choice(spec["closers"]))
    if tail and body[-1][0][-1] not in ".?!":
        # an unpunctuated terse core followed by more text still needs a sentence break
        body[-1] = (body[-1][0] + ".", body[-1][1])
    if rng.random() < P_OPENER:
        opener = rng.choice(spec["openers"])
        first, lowerable = body[0]
        if opener.endswith(",") and lowerable and rng.random() < P_LOWER_AFTER_OPENER:
            body[0] = (first[:1].lower() + first[1:], lowerable)
        body.insert(0, (opener, False))
    text = " ".join([sentence for sentence, _ in body] + tail)

    if terse or rng.random() < P_LOWERCASE:
        text = text.lower()
        if rng.random() < P_TEXTSPEAK:
            text = re.sub(r"\bplease\b", "pls", text)
            text = re.sub(r"\byou\b", "u", text)
    if rng.random() < P_NO_FINAL_PUNCT:
        text = text.rstrip(".!")
    return " ".join(text.split())


def generate_domain(domain: str, seed: int) -> dict[str, list[str]]:
    """Generate the unique texts of every class of one domain, in label order."""
    spec = DOMAINS[domain]
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: dict[str, list[str]] = {}
    for label, size in spec["sizes"].items():
        texts[label] = []
        attempts = 0
        while len(texts[label]) < size:
            attempts += 1
            if attempts > size * 500:
                raise RuntimeError(f"{domain}/{label}: could not make {size} unique texts")
            text = compose(label, rng, spec)
            key = normalise(text)
            if key in seen or violations(text, domain):
                continue
            seen.add(key)
            texts[label].append(text)
    return texts


def split_domain(
    texts: dict[str, list[str]], rng: random.Random
) -> dict[str, list[tuple[str, str]]]:
    """Stratified 70/15/15 split per class, rows shuffled within each split."""
    rows: dict[str, list[tuple[str, str]]] = {name: [] for name, _ in SPLITS}
    for label, items in texts.items():
        items = list(items)
        rng.shuffle(items)
        n_train = round(len(items) * SPLITS[0][1])
        n_val = round(len(items) * SPLITS[1][1])
        bounds = {
            "train": (0, n_train),
            "validation": (n_train, n_train + n_val),
            "test": (n_train + n_val, len(items)),
        }
        for name, (lo, hi) in bounds.items():
            rows[name] += [(text, label) for text in items[lo:hi]]
    for name in rows:
        rng.shuffle(rows[name])
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("text", "label"))
        writer.writerows(rows)


def count_table(rows: dict[str, list[tuple[str, str]]], labels: list[str]) -> list[str]:
    """Markdown table of examples per class and split."""
    names = [name for name, _ in SPLITS]
    lines = [
        "| label | " + " | ".join(names) + " | total |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for label in [*labels, None]:
        counts = [sum(1 for _, lab in rows[n] if label is None or lab == label) for n in names]
        name = f"`{label}`" if label else "**total**"
        lines.append(f"| {name} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    return lines


def readme(all_rows: dict[str, dict[str, list[tuple[str, str]]]], seed: int) -> str:
    lines = [
        "# peftops demo datasets",
        "",
        "Two small **synthetic** English text-classification datasets used by the peftops demos",
        "and tests. Every message was written by the peftops authors: it is generated by",
        "`scripts/make_demo_data.py` from hand-written templates and slot values (merchants,",
        "amounts, countries, medications, symptoms, durations, ...), with optional openers,",
        "closers and context sentences and some register variation (terse, lowercase, missing",
        "punctuation). No text comes from any existing dataset, and no message describes a real",
        "person or a real account.",
        "",
        f"Regenerate (byte-identical for the same seed; this copy used seed {seed}):",
        "",
        "```bash",
        f"python scripts/make_demo_data.py --out data --seed {seed}",
        "```",
        "",
        "Files: `<domain>/{train,validation,test}.csv`, UTF-8, columns `text,label`, split",
        "70/15/15 stratified by label, rows shuffled. Texts are unique within a domain (after",
        "lowercasing and collapsing whitespace and punctuation), 10 to 600 characters, one line.",
        "",
    ]
    for domain, rows in all_rows.items():
        spec = DOMAINS[domain]
        labels = list(spec["classes"])
        lines += [
            f"## {domain}",
            "",
            f"{capitalise(spec['description'])}. Labels, in id order:",
            "",
            *[f"{i}. `{label}`" for i, label in enumerate(labels)],
            "",
            *count_table(rows, labels),
            "",
        ]
    lines += [
        "Healthcare messages contain no names, contact details, identifiers (record numbers,",
        "SSN-like numbers) or dates; the only digits are small doses, temperatures, durations",
        "and bill amounts. Finance messages contain no card or account numbers (at most the last",
        "four digits of a card).",
        "",
        "Neighbouring classes overlap on purpose (e.g. a declined card and an unrecognised",
        "charge both mention cards; urgent and routine symptoms differ by severity cues), so",
        "the task is not solvable by a single keyword, but every message has one clear label.",
        "",
        "## License",
        "",
        "Same as the peftops project: Apache-2.0.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output directory")
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    args = parser.parse_args(argv)

    all_rows = {}
    for offset, domain in enumerate(DOMAINS):
        texts = generate_domain(domain, args.seed * 100 + offset)
        rows = split_domain(texts, random.Random(args.seed * 100 + 50 + offset))
        all_rows[domain] = rows
        for name, split_rows in rows.items():
            write_csv(args.out / domain / f"{name}.csv", split_rows)
        sizes = ", ".join(f"{name}={len(split_rows)}" for name, split_rows in rows.items())
        print(f"{domain}: {sizes}")
    (args.out / "README.md").write_text(readme(all_rows, args.seed), encoding="utf-8")
    print(f"wrote {args.out}/")


if __name__ == "__main__":
    main()
